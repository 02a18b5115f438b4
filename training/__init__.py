"""Local fine-tuning of distractor generators with transformers, peft, bitsandbytes and trl: QLoRA SFT, the careful
adapter merge, DPO and KTO from the ratings, and prediction through the `hf` generator; needs the `train` extra.
May import rater's store, data and generator layers, never the TUI."""
