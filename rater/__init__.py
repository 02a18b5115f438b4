"""rater: rate multiple-choice distractors and turn the ratings into training data."""

__version__ = "0.1.0"
