"""SFT, DPO and KTO with TRL on a LoRA adapter (QLoRA where 4-bit is supported), with manifest and loss plot."""

from pathlib import Path
from typing import Callable

from rater.core.errors import InputError
from training.data import Fitted, as_dataset, fit_to_length, rows_hash
from training.manifest import Timer, write_loss_plot, write_manifest
from training.models import device, four_bit_supported, keep_cpu_4bit_gradients, load_model, load_tokenizer
from training.settings import TrainSettings


def lora_config(settings: TrainSettings):
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM")


def common_args(settings: TrainSettings, output: Path) -> dict:
    on_cuda = device().startswith("cuda")
    return dict(output_dir=str(output), learning_rate=settings.learning_rate, num_train_epochs=settings.epochs,
                max_steps=settings.max_steps, per_device_train_batch_size=settings.batch_size,
                gradient_accumulation_steps=settings.grad_accum, lr_scheduler_type=settings.scheduler,
                save_steps=settings.save_steps, logging_steps=settings.logging_steps, seed=settings.seed,
                report_to="none", fp16=on_cuda, bf16=False, use_cpu=not on_cuda, max_length=settings.max_length,
                save_only_model=True, disable_tqdm=True)


def prepare(model_path: Path, settings: TrainSettings):
    quantize = settings.quantize and four_bit_supported()
    model = load_model(model_path, quantize=quantize)
    if quantize:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, load_tokenizer(model_path), quantize


def finish(trainer, output: Path, *, stage: str, settings: TrainSettings, fitted: Fitted, timer: Timer,
           quantized: bool, base: Path) -> Fitted:
    trainer.save_model(str(output))
    write_loss_plot(trainer.state.log_history, output / "loss.png", f"{stage} loss")
    write_manifest(output, stage=stage, config={**settings.as_dict(), "base_model": str(base)},
                   data_sha256=rows_hash(fitted.rows), device=device(), timer=timer,
                   extra={"rows": len(fitted.rows), **fitted.manifest(), "quantized_4bit": quantized,
                          "steps": trainer.state.global_step, "log_history": trainer.state.log_history})
    return fitted


def _keep_gradients(trainer) -> None:
    # The trainers' own eval-mode forwards (reference log-probs) would switch 4-bit layers to a kernel without a
    # backward pass on AVX512-BF16 CPUs: re-apply the guard to the model the trainer actually holds.
    keep_cpu_4bit_gradients(trainer.model)


def _train(stage: str, model_path: Path, rows: list[dict], output: Path, settings: TrainSettings,
           options: Callable[[list[dict]], dict] = lambda rows: {}) -> Fitted:
    """One TRL trainer on a new LoRA adapter, on the rows that fit `max_length` (see `Fitted`); `options` gives the
    trainer config's stage options for those rows. DPO and KTO get `ref_model=None`, so their reference is the
    same model with the adapter disabled. Returns what was trained on."""
    import trl

    trainer_class, config_class = {"sft": (trl.SFTTrainer, trl.SFTConfig), "dpo": (trl.DPOTrainer, trl.DPOConfig),
                                   "kto": (trl.KTOTrainer, trl.KTOConfig)}[stage]
    with Timer() as timer:
        model, tokenizer, quantized = prepare(model_path, settings)
        fitted = fit_to_length(rows, tokenizer, settings.max_length)
        reference = {} if stage == "sft" else {"ref_model": None}
        trainer = trainer_class(model=model, args=config_class(**common_args(settings, output), **options(fitted.rows)),
                                train_dataset=as_dataset(fitted.rows, tokenizer), processing_class=tokenizer,
                                peft_config=lora_config(settings), **reference)
        _keep_gradients(trainer)
        trainer.train()
    return finish(trainer, output, stage=stage, settings=settings, fitted=fitted, timer=timer, quantized=quantized,
                  base=model_path)


def train_sft(model_path: Path, rows: list[dict], output: Path, settings: TrainSettings) -> Fitted:
    return _train("sft", model_path, rows, output, settings, lambda _: {"completion_only_loss": True})


def train_dpo(model_path: Path, rows: list[dict], output: Path, settings: TrainSettings) -> Fitted:
    return _train("dpo", model_path, rows, output, settings, lambda _: {"beta": settings.beta})


def kto_weights(rows: list[dict]) -> dict:
    """Weigh the smaller class up so both sides count about equally (TRL's recommended range)."""
    good = sum(row["label"] for row in rows)
    bad = len(rows) - good
    if not good or not bad:
        raise InputError(f"KTO needs accepted and rejected distractors; found {good} accepted, {bad} rejected.",
                         "rate more distractors")
    return {"desirable_weight": bad / good} if good > bad else {"undesirable_weight": good / bad}


def train_kto(model_path: Path, rows: list[dict], output: Path, settings: TrainSettings) -> Fitted:
    if settings.batch_size < 2:
        raise InputError("KTO needs --batch-size 2 or more.", "pass --batch-size 2")
    kto_weights(rows)  # refused before any model loads
    return _train("kto", model_path, rows, output, settings, lambda kept: {"beta": settings.beta, **kto_weights(kept)})
