"""The LLM judge: any OpenAI-compatible chat model scores distractors through the Rater interface."""
