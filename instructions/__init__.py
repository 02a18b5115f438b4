"""Teachers' instructions and the LLM judge's prompt (Markdown); installed as `rater.instructions`."""
