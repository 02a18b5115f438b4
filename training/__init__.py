"""Local fine-tuning of distractor generators (SFT, merge, DPO, KTO, prediction); needs the `train` extra.

Not yet implemented: this package only reserves its place in the layer contracts.
"""
