"""Training on a tiny Mistral-architecture model built offline: SFT, careful merge, DPO, KTO, prediction."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from sqlalchemy import select
from sqlmodel import Session

from rater.store.tables import Distractor
from training.data import sft_from_store
from training.models import four_bit_supported, keep_cpu_4bit_gradients, load_model, load_tokenizer
from training.settings import resolve
from training.trainers import lora_config, train_dpo, train_kto, train_sft


@pytest.fixture
def tiny(tiny_model):
    return tiny_model


@pytest.fixture
def demo_rows(cli, engine):
    cli("demo")
    cli("judge", "--rater", "rules")
    return sft_from_store(engine, split="all")


def adapter_keys(folder):
    return list(load_file(str(folder / "adapter_model.safetensors")))


def test_sft_trains_only_lora_weights_and_writes_checkpoints_manifest_and_plot(tiny, demo_rows, tmp_path):
    base_before = load_file(str(tiny / "model.safetensors"))
    out = tmp_path / "sft"
    fitted = train_sft(tiny, demo_rows, out, resolve("sft", max_steps=4, save_steps=2))
    assert (fitted.given, len(fitted.rows), fitted.dropped) == (12, 12, 0)
    keys = adapter_keys(out)
    assert keys and all("lora_A" in k or "lora_B" in k for k in keys)
    assert {k.split(".")[-3] for k in keys} == {"q_proj", "v_proj"}
    assert any(load_file(str(out / "adapter_model.safetensors"))[k].abs().sum() > 0 for k in keys if "lora_B" in k)
    base_after = load_file(str(tiny / "model.safetensors"))
    assert all(torch.equal(base_before[k], base_after[k]) for k in base_before)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "sft" and manifest["rows"] == 12 and len(manifest["data_sha256"]) == 64
    assert (manifest["rows_given"], manifest["rows_kept"], manifest["rows_dropped"]) == (12, 12, 0)
    assert manifest["packages"]["trl"] and manifest["config"]["learning_rate"] == 5e-5 and manifest["seconds"] > 0
    assert manifest["quantized_4bit"] == four_bit_supported()
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sft_masks_the_prompt_from_the_loss(tiny, demo_rows, tmp_path):
    from trl import SFTConfig, SFTTrainer

    from training.data import as_dataset
    from training.trainers import common_args

    tokenizer = load_tokenizer(tiny)
    trainer = SFTTrainer(model=load_model(tiny), args=SFTConfig(**common_args(resolve("sft"), tmp_path),
                                                                 completion_only_loss=True),
                         train_dataset=as_dataset(demo_rows[:2], tokenizer), processing_class=tokenizer,
                         peft_config=lora_config(resolve("sft")))
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0]
    trained_on = tokenizer.decode(labels[labels != -100])
    assert trained_on == demo_rows[0]["completion"] + tokenizer.eos_token
    assert "<context>" not in trained_on and "[INST]" not in trained_on


def test_careful_merge_matches_the_trained_model_better_than_naive(tiny, demo_rows, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.merge import merge_adapter

    if not four_bit_supported():
        pytest.fail("bitsandbytes 4-bit is needed for QLoRA; it loads on x86 CPUs and CUDA")
    adapter = tmp_path / "sft"
    train_sft(tiny, demo_rows, adapter, resolve("sft", max_steps=4, learning_rate=1e-3))
    trained = PeftModel.from_pretrained(load_model(tiny, quantize=True), str(adapter)).eval()
    tokens = load_tokenizer(tiny)(demo_rows[0]["prompt"], return_tensors="pt")["input_ids"][:, :64]
    differences = {}
    with torch.no_grad():
        reference = trained(tokens).logits.float()
        for mode in ("careful", "naive"):
            folder = merge_adapter(tiny, adapter, tmp_path / mode, mode)
            config = json.loads((folder / "config.json").read_text())
            assert "quantization_config" not in config and config["dtype"] == "bfloat16"
            assert json.loads((folder / "manifest.json").read_text())["config"]["mode"] == mode
            merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
            differences[mode] = (merged(tokens).logits - reference).abs().max().item()
    with capsys.disabled():
        print(f"\nmax logit difference to the trained 4-bit model: careful {differences['careful']:.4f}, "
              f"naive {differences['naive']:.4f}")
    assert differences["careful"] < differences["naive"] / 5


def test_dpo_first_loss_is_ln2_and_checkpoints_appear(tiny, demo_rows, engine, tmp_path):
    from training.data import pref_from_store

    rows = pref_from_store(engine, split="all")
    assert len(rows) == 4
    out = tmp_path / "dpo"
    train_dpo(tiny, rows, out, resolve("dpo", max_steps=4, save_steps=2, grad_accum=1))
    losses = [e["loss"] for e in json.loads((out / "manifest.json").read_text())["log_history"] if "loss" in e]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert (out / "checkpoint-2" / "adapter_model.safetensors").exists() and (out / "checkpoint-4").is_dir()
    assert all("lora_" in k for k in adapter_keys(out))


def test_kto_runs_on_unpaired_labels(tiny, demo_rows, engine, tmp_path):
    from training.data import kto_from_store

    rows = kto_from_store(engine, split="all")
    assert len(rows) == 48 and {r["label"] for r in rows} == {True, False}
    out = tmp_path / "kto"
    train_kto(tiny, rows, out, resolve("kto", max_steps=2, grad_accum=1))
    losses = [e["loss"] for e in json.loads((out / "manifest.json").read_text())["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    with pytest.raises(Exception, match="batch-size 2"):
        train_kto(tiny, rows, tmp_path / "kto1", resolve("kto", batch_size=1))


def test_cpu_4bit_gradients_stay_nonzero_after_an_eval_forward(tmp_path):
    """Regression: on AVX512-BF16 CPUs an eval-mode forward switched Linear4bit to a kernel with no backward."""
    from peft import get_peft_model

    from training.tiny import build_tiny_model
    tiny = build_tiny_model(tmp_path / "wide", hidden=128)  # that kernel needs rows of at least one 64-block

    def lora_grad_norm(guard: bool) -> float:
        model = load_model(tiny, quantize=True)
        if not guard:
            for module in model.modules():
                if hasattr(module, "support_avx512bf16_for_cpu"):
                    module.support_avx512bf16_for_cpu = True  # the library default
        model = get_peft_model(model, lora_config(resolve("sft")))
        tokens = torch.tensor([[5, 60, 70, 80, 90]])
        model.eval()
        with torch.no_grad():
            model(tokens)
        model.train()
        # LoRA B starts at zero, so A's gradient is zero at first: give B a value to see A's gradient
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.data.fill_(0.01)
        model(tokens, labels=tokens).loss.backward()
        return sum(p.grad.norm().item() for n, p in model.named_parameters() if "lora_A" in n and p.grad is not None)

    assert lora_grad_norm(guard=True) > 0
    assert keep_cpu_4bit_gradients(load_model(tiny, quantize=True)) > 0
    has_bf16_kernel = "avx512_bf16" in open("/proc/cpuinfo").read()
    without = lora_grad_norm(guard=False)
    # on CPUs with AVX512-BF16 the unguarded model shows the bug; elsewhere both are fine
    assert (without == 0) if has_bf16_kernel else (without > 0)


def test_whole_chain_through_the_cli(cli, engine, tiny, tmp_path):
    """sft -> merge -> dpo -> predict -> eval build, on the tiny model, in one process."""
    cli("demo")
    cli("judge", "--rater", "rules")
    sft, merged, dpo = tmp_path / "sft", tmp_path / "merged", tmp_path / "dpo"
    # enough steps, with every projection adapted, for the random tiny model to learn the <false> format
    cli("train", "sft", "--model", tiny, "-o", sft, "--split", "all", "--max-steps", "150", "--lr", "2e-2",
        "--grad-accum", "1", "--lora-r", "16", "--target-modules", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        "--no-quantize", "--save-steps", "1000")
    cli("train", "merge", "--model", tiny, "--adapter", sft, "-o", merged)
    cli("train", "dpo", "--model", merged, "-o", dpo, "--split", "all", "--max-steps", "2", "--save-steps", "1")
    cli("train", "predict", "--model", merged, "--source", "sft", "--split", "all", "--limit", "12")
    cli("train", "predict", "--model", merged, "--adapter", dpo / "checkpoint-1", "--source", "dpo", "--split", "all",
        "--limit", "12")
    with Session(engine) as session:
        made = session.execute(select(Distractor.source, Distractor.text).where(
            Distractor.source.in_(("sft", "dpo")))).all()
    assert {s for s, _ in made} == {"sft", "dpo"}, "the SFT-trained tiny model emits <false> tags"
    assert all(t and t == t.strip() and "<false>" not in t and "</false>" not in t for _, t in made)
    result = cli("eval", "build", "chain", "--sources", "human,sft,dpo", "--split", "all", "--items", "12")
    assert "Built chain" in result.output


def test_train_without_output_is_a_clear_error(cli, tiny):
    result = cli("train", "sft", "--model", tiny, ok=False)
    assert result.exit_code == 2 and "--output" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU-only: peak memory of the 4-bit path needs CUDA")
def test_gpu_4bit_peak_memory(tiny, demo_rows, tmp_path):
    import bitsandbytes as bnb

    torch.cuda.reset_peak_memory_stats()
    out = tmp_path / "sft"
    train_sft(tiny, demo_rows, out, resolve("sft", max_steps=2))
    assert json.loads((out / "manifest.json").read_text())["quantized_4bit"] is True
    model = load_model(tiny, quantize=True)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())  # really 4-bit, not full precision
    assert torch.cuda.max_memory_allocated() < 512 * 2**20  # a tiny model's 4-bit run stays far below 0.5 GB
