"""The teachers' rating page in a browser (`rater serve`): one async process, the terminal's runner and teacher
rater behind it."""
