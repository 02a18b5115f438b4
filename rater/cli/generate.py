"""`rater generate`: distractors from an installed generator, stored under a source label."""

import asyncio
from pathlib import Path
from typing import Optional

import typer

from rater.cli import app
from rater.cli.progress import end_of_run, progress_bar
from rater.core.text import plural
from rater.generators import GENERATORS
from rater.generators.runner import run_generator


def generate_into(engine, console, generator, **kwargs):
    """Run a generator with a progress bar; returns the summary."""
    with progress_bar(console, "{task.fields[added]} added") as progress:
        task = progress.add_task(f"generate ({kwargs['source']})", total=None, added=0)
        summary = asyncio.run(run_generator(
            generator, engine, on_start=lambda total: progress.update(task, total=total),
            on_batch=lambda done, added: progress.update(task, advance=done, added=added), **kwargs))
    return summary


@app.command()
def generate(ctx: typer.Context,
             generator: str = typer.Option("baseline", help="Installed generator (see `rater generators`)."),
             source: str = typer.Option(..., help="Source label the distractors are stored under, e.g. sft."),
             model: Optional[str] = typer.Option(None, help="Model name (openai) or folder (hf)."),
             adapter: Optional[Path] = typer.Option(None, help="PEFT adapter folder (hf)."),
             base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server URL (openai)."),
             api_key_env: Optional[str] = typer.Option(None, help="Variable holding the API key (openai)."),
             api: str = typer.Option("chat", help="chat or completions (openai)."),
             split: str = typer.Option("test", help="train, dev, test or all."),
             limit: Optional[int] = typer.Option(100, help="The first N items of the split."),
             num: int = typer.Option(4, min=1, max=9, help="Distractors per item."),
             batch_size: Optional[int] = typer.Option(None, help="Items per batch (default: the generator's)."),
             temperature: float = typer.Option(0.7, help="Sampling temperature (model generators)."),
             top_p: float = typer.Option(0.95, help="Nucleus sampling (hf)."),
             max_new_tokens: int = typer.Option(128, help="Tokens per continuation (model generators)."),
             concurrency: int = typer.Option(8, min=1, help="Requests in flight (openai)."),
             timeout: float = typer.Option(60.0, help="Seconds before a request is abandoned and retried (openai)."),
             max_attempts: int = typer.Option(5, min=1, help="Attempts per request before it counts as failed "
                                                             "(openai)."),
             retry_base: float = typer.Option(1.0, help="Seconds before the first retry; doubles each time (openai)."),
             seed: int = typer.Option(0, help="Sampling seed (hf)."),
             load_in_4bit: bool = typer.Option(False, help="4-bit weights on CUDA (hf).")) -> None:
    """Generate distractors; a rerun completes only items still short of --num from this source."""
    instance = GENERATORS.load(generator).from_options(
        model=model, adapter=adapter, base_url=base_url, api_key_env=api_key_env, api=api, temperature=temperature,
        top_p=top_p, max_tokens=max_new_tokens, max_new_tokens=max_new_tokens, concurrency=concurrency, seed=seed,
        load_in_4bit=load_in_4bit, timeout=timeout, max_attempts=max_attempts, retry_base=retry_base)
    summary = generate_into(ctx.obj.engine, ctx.obj.console, instance, source=source, num=num, split=split,
                            limit=limit, batch_size=batch_size)
    ctx.obj.console.print(f"{generator}: {plural(summary.items, 'item')}, {plural(summary.added, 'distractor')} added "
                          f"under '{source}'; {plural(summary.short, 'item')} got fewer than {num}; "
                          f"{plural(summary.repeats, 'repeat')} of distractors the "
                          f"items already had were not added; {plural(summary.failed_requests, 'request')} failed")
    end_of_run(ctx.obj.console, failed=summary.failed_requests, succeeded=summary.added, noun="request",
               nothing=f"Nothing was generated: {plural(summary.failed_requests, 'request')} failed.",
               hint="read the failures above, check --model and the server; a rerun completes the items",
               again="rerun to complete the items they left short")


@app.command("generators")
def list_generators(ctx: typer.Context) -> None:
    """The installed generators (plugins of the `rater.generators` entry-point group)."""
    for name in GENERATORS.installed():
        ctx.obj.console.print(name)
