"""`rater train sft|merge|dpo|kto|predict`: local fine-tuning; the training stack loads only here."""

from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.data.exports import Tally, check_split, kto_balance, rater_ids
from rater.evaluation.gate import MIN_KAPPA_HELP, MIN_SHARED_HELP, check_gate_options, labels_to_use
from rater.store.engine import session_scope

STAGES = ("sft", "merge", "dpo", "kto", "predict")


def _training():
    """The training package, or a clear error saying how to install it."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401

        from training import data, merge, settings, trainers
    except ImportError as exc:
        raise InputError(f"Training needs the train extra ({exc.name} is not installed).",
                         "pip install torch==2.13.0 && pip install 'rater[train]'") from exc
    return data, merge, settings, trainers


@app.command()
def train(ctx: typer.Context,
          stage: str = typer.Argument(..., help="sft, merge, dpo, kto or predict."),
          model: Path = typer.Option(..., help="Base model folder (merged SFT model for dpo/kto)."),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder."),
          adapter: Optional[Path] = typer.Option(None, help="Adapter folder (merge, predict)."),
          mode: str = typer.Option("careful", help="merge: careful (NF4 round trip) or naive."),
          data: Optional[Path] = typer.Option(None, help="Exported file to train on instead of the store."),
          split: str = typer.Option("train", help="Split to train on (sft, dpo, kto) or predict for: train (default), "
                                                  "dev, test or all. Training on test items needs --split test or "
                                                  "all, and says how many rows come from them."),
          source: List[str] = typer.Option([], help="sft: target sources (default human); predict: the label."),
          rater: List[str] = typer.Option([], help="dpo/kto: raters whose ratings count (default all)."),
          pairs: str = typer.Option("disjoint", help="dpo: pair strategy (disjoint, all, one)."),
          recipe: Optional[Path] = typer.Option(None, help="YAML recipe (training/recipes/)."),
          learning_rate: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
          epochs: Optional[float] = typer.Option(None, help="Epochs."),
          max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
          batch_size: Optional[int] = typer.Option(None, help="Per-device batch (training) or items per batch "
                                                              "(predict)."),
          grad_accum: Optional[int] = typer.Option(None, help="Gradient accumulation steps."),
          save_steps: Optional[int] = typer.Option(None, help="Checkpoint every N steps."),
          lora_r: Optional[int] = typer.Option(None, help="LoRA rank."),
          target_modules: Optional[str] = typer.Option(None, help="Comma-separated LoRA targets (q_proj,v_proj)."),
          quantize: Optional[bool] = typer.Option(None, "--quantize/--no-quantize", help="4-bit NF4 (QLoRA)."),
          beta: Optional[float] = typer.Option(None, help="dpo/kto beta."),
          max_length: Optional[int] = typer.Option(None, min=8, help="Longest training row in tokens (prompt and "
                                                                      "answer; default 2048); longer rows are left "
                                                                      "out and counted."),
          limit: int = typer.Option(100, help="predict: the first N items of the split."),
          num: int = typer.Option(4, help="predict: distractors per item."),
          seed: int = typer.Option(0, help="Seed."),
          min_kappa: Optional[float] = typer.Option(None, help="dpo/kto: " + MIN_KAPPA_HELP),
          min_shared: Optional[int] = typer.Option(None, help="dpo/kto: " + MIN_SHARED_HELP)) -> None:
    """Fine-tune locally: QLoRA SFT, a careful adapter merge, DPO or KTO from the ratings, and prediction."""
    if stage not in STAGES:
        raise InputError(f"Unknown training stage {stage!r}.", f"use one of: {', '.join(STAGES)}")
    if stage != "predict" and output is None:
        raise InputError(f"`rater train {stage}` needs -o/--output.", "name the folder to write")
    check_gate_options(min_kappa, min_shared)
    if stage in ("dpo", "kto") and data and min_kappa is not None:
        raise InputError("--min-kappa checks the raters of the store's ratings; a --data file carries no raters.",
                         "leave out --data (train from the store) or --min-kappa")
    if stage in ("dpo", "kto") and not data:
        with session_scope(ctx.obj.engine) as session:
            for line in labels_to_use(session, rater_ids(session, rater), min_kappa, min_shared):
                ctx.obj.console.print(line)
    data_module, merge_module, settings_module, trainers = _training()
    console = ctx.obj.console
    if stage == "merge":
        if adapter is None:
            raise InputError("`rater train merge` needs --adapter.", "pass the folder `rater train sft` wrote")
        merge_module.merge_adapter(model, adapter, output, mode)
        console.print(f"Merged ({mode}) into {output}")
        return
    if stage == "predict":
        _predict(ctx, model, adapter, split, source, limit, num, batch_size, seed)
        return
    settings = settings_module.resolve(stage, recipe, learning_rate=learning_rate, epochs=epochs, max_steps=max_steps,
                                       batch_size=batch_size, grad_accum=grad_accum, save_steps=save_steps,
                                       lora_r=lora_r, target_modules=target_modules, quantize=quantize, beta=beta,
                                       max_length=max_length, seed=seed)
    rows = _rows(ctx, data_module, stage, data, split, source, rater, pairs)
    run = {"sft": trainers.train_sft, "dpo": trainers.train_dpo, "kto": trainers.train_kto}[stage]
    fitted = run(model, rows, output, settings)
    console.print(f"{stage}: trained on {fitted.describe()}; adapter, checkpoints, loss.png and manifest.json in "
                  f"{output}")


def _rows(ctx, data_module, stage, data, split, source, rater, pairs) -> list[dict]:
    if data:
        return {"sft": data_module.sft_from_file, "dpo": data_module.pref_from_file,
                "kto": data_module.kto_from_file}[stage](data)
    check_split(split)
    engine, tally = ctx.obj.engine, Tally()
    if stage == "sft":
        rows = data_module.sft_from_store(engine, split=split, sources=tuple(source) or (HUMAN_SOURCE,), tally=tally)
    elif stage == "dpo":
        rows = data_module.pref_from_store(engine, raters=rater, strategy=pairs, split=split, tally=tally)
    else:
        rows = data_module.kto_from_store(engine, raters=rater, split=split, tally=tally)
    console = ctx.obj.console
    if tally.describe():
        console.print(f"Left out (they would teach nothing): {tally.describe()}.")
    if tally.test_rows:
        console.print(f"[yellow]Warning: {tally.test_rows} of {len(rows)} training rows come from test items "
                      f"(--split {split}): never evaluate this model on those items.[/yellow]")
    if stage == "kto" and (warning := kto_balance([row["label"] for row in rows])) is not None:
        console.print(f"[yellow]Warning: {warning}[/yellow]")
    return rows


def _predict(ctx, model, adapter, split, source, limit, num, batch_size, seed) -> None:
    from rater.cli.generate import generate_into
    from training.generate import HFGenerator

    if len(source) != 1:
        raise InputError("`rater train predict` needs one --source LABEL for the new distractors.", "e.g. --source sft")
    generator = HFGenerator(model, adapter, seed=seed)
    summary = generate_into(ctx.obj.engine, ctx.obj.console, generator, source=source[0], num=num, split=split,
                            limit=limit, batch_size=batch_size)
    ctx.obj.console.print(f"predict: {summary.items} items, {summary.added} distractors stored as '{source[0]}'")
