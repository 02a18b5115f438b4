"""Loading models and tokenizers: device choice, 4-bit NF4 where it works, and the CPU 4-bit pitfall."""

from pathlib import Path

from rater.core.errors import InputError


def device() -> str:
    """cuda (this process's GPU under `accelerate launch`, which sets LOCAL_RANK), else cpu."""
    import os

    import torch

    if not torch.cuda.is_available():
        return "cpu"
    rank = os.environ.get("LOCAL_RANK")
    return f"cuda:{rank}" if rank is not None else "cuda"


def nf4_config():
    """4-bit NF4 with double quantization (QLoRA); compute in bf16 on CUDA, float32 on the CPU."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if device().startswith("cuda") else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def four_bit_supported() -> bool:
    """bitsandbytes 4-bit loads on CUDA and on x86 CPUs."""
    import platform

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return device().startswith("cuda") or platform.machine() in ("x86_64", "AMD64")


def keep_cpu_4bit_gradients(model) -> int:
    """On CPUs with AVX512-BF16 an eval-mode forward switches `Linear4bit` to a kernel with no backward pass, and
    gradients silently become zero; turning that kernel off on every `Linear4bit` keeps training correct."""
    count = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def check_model_path(path: Path | str) -> Path:
    path = Path(path)
    if not (path / "config.json").exists():
        raise InputError(f"No model at {path} (config.json missing).",
                         "pass a folder written by save_pretrained (this machine cannot download from a hub)")
    return path


def load_tokenizer(path: Path | str, padding_side: str = "right"):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(check_model_path(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model(path: Path | str, *, quantize: bool = False, dtype=None):
    """A causal LM on the best device; 4-bit NF4 when `quantize` and supported."""
    import logging

    import torch

    # bitsandbytes warns on every CPU 4-bit load that an optional kernel package is missing; its own CPU path works
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"device_map": {"": device()}}
    if quantize:
        kwargs["quantization_config"] = nf4_config()
    else:
        kwargs["dtype"] = dtype or (torch.bfloat16 if device().startswith("cuda") else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(check_model_path(path), **kwargs)
    if quantize:
        keep_cpu_4bit_gradients(model)
    return model
