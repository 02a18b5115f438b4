"""Merging a (Q)LoRA adapter into its base model.

`careful` (default): every linear layer the adapter was trained on top of was 4-bit NF4 during training, so the
base weights are quantized to NF4 and dequantized before the LoRA delta is added; the merged model then matches
the trained model closely. `naive`: the delta is added to the original full-precision weights. The result is
saved in bf16 with no quantization config left.
"""

import json
from pathlib import Path

from rater.core.errors import InputError
from training.manifest import Timer, write_manifest
from training.models import check_model_path, device

MODES = ("careful", "naive")


def nf4_round_trip(weight, blocksize: int = 64):
    """The weight as the 4-bit model saw it: quantized to NF4 (double quantization) and dequantized."""
    import bitsandbytes.functional as F

    quantized, state = F.quantize_4bit(weight.float().contiguous(), blocksize=blocksize, quant_type="nf4",
                                       compress_statistics=True)
    return F.dequantize_4bit(quantized, state).to(weight.dtype)


def quantized_linears(model):
    """The Linear layers bitsandbytes replaces when loading in 4 bits (all but the output head)."""
    import torch

    skip = set(getattr(model, "_keep_in_fp32_modules", None) or []) | {"lm_head"}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in skip:
            yield name, module


def merge_adapter(base: Path, adapter: Path, output: Path, mode: str = "careful") -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if mode not in MODES:
        raise InputError(f"Unknown merge mode {mode!r}.", f"use one of: {', '.join(MODES)}")
    if not (adapter / "adapter_config.json").exists():
        raise InputError(f"No adapter at {adapter} (adapter_config.json missing).", "pass the folder `train sft` wrote")
    with Timer() as timer:
        model = AutoModelForCausalLM.from_pretrained(check_model_path(base), dtype=torch.float32)
        if mode == "careful":
            with torch.no_grad():
                for _, module in quantized_linears(model):
                    module.weight.copy_(nf4_round_trip(module.weight))
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged = merged.to(torch.bfloat16)
        merged.config.quantization_config = None
        if hasattr(merged.config, "quantization_config"):
            del merged.config.quantization_config
        output.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(output)
        from transformers import AutoTokenizer

        tokenizer_home = adapter if (adapter / "tokenizer_config.json").exists() else check_model_path(base)
        AutoTokenizer.from_pretrained(tokenizer_home).save_pretrained(output)
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    write_manifest(output, stage="merge", config={"mode": mode, "base_model": str(base), "adapter": str(adapter),
                                                  "dtype": "bfloat16", "lora": adapter_config},
                   data_sha256=None, device=device(), timer=timer)
    return output
