"""Headless rating: `rater judge` runs the rules rater, any installed rater, or an LLM judge over the store."""

import asyncio
import time
from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.cli.progress import end_of_run, progress_bar
from rater.core.errors import InputError, ServerStopped
from rater.core.text import plural
from rater.raters import RATERS
from rater.raters.runner import Queue, RunSummary, run_rater
from rater.store.items import ItemFilter


@app.command("raters")
def list_raters(ctx: typer.Context) -> None:
    """The installed raters (plugins of the `rater.raters` entry-point group) and the study's panels."""
    from sqlalchemy.exc import SQLAlchemyError

    from rater.core.errors import RaterError
    from rater.evaluation.panels import panels
    from rater.store.engine import session_scope

    for name in RATERS.installed():
        ctx.obj.console.print(name)
    try:  # the installed raters need no database; the study's panels are in it
        with session_scope(ctx.obj.engine) as session:
            found = panels(session)
    except (RaterError, SQLAlchemyError) as error:
        ctx.obj.console.print(f"(the study's panels could not be read: {getattr(error, 'message', type(error).__name__)})")
        return
    for panel in found:
        ctx.obj.console.print(f"{panel.name} (panel: {panel.describe()})")


def _orders(value: str) -> int:
    try:
        orders = int(value)
    except ValueError:
        orders = 0
    if orders < 1:
        raise InputError(f"--orders {value!r} is neither a number of orders (1 or more) nor auto.",
                         "e.g. --orders 3, or --orders auto")
    return orders


def _llm_judge(ctx, judge, model, **options):
    from rater.judge.config import api_key, find_judge, load_judge, with_overrides
    from rater.judge.prompt import load_template, prompt_sha256
    from rater.judge.rater import JudgeSettings, JudgeStats, LLMJudge
    from rater.judge.scoring import Acceptance
    from rater.llm.client import Endpoint

    if judge:
        config = load_judge(judge, options["config"])
    else:  # a judge run by --model still picks up its judges.yaml entry or a rule calibrated under its name
        config = find_judge(options["as_name"] or model, model, options["config"])
    config = with_overrides(config, model=model, base_url=options["base_url"], api_key_env=options["api_key_env"],
                            structured=options["structured"] or None, max_tokens=options["max_tokens"])
    template = load_template(options["prompt"])
    config = config.fitted_to(prompt=prompt_sha256(template, with_context=options["with_context"],
                                                   structured=config.structured))
    if options["threshold"] is not None:
        config = with_overrides(config, acceptance=Acceptance(rule="threshold", threshold=options["threshold"]),
                                acceptance_from="--threshold")
    ctx.obj.console.print(f"acceptance: {config.acceptance.as_dict()} (from {config.acceptance_from})")
    endpoint = Endpoint(model=config.model, base_url=config.base_url, timeout=options["timeout"],
                        max_attempts=options["max_attempts"], rpm=options["rpm"], retry_base=options["retry_base"],
                        structured=config.structured, max_tokens=config.max_tokens)
    auto = options["orders"].strip().lower() == "auto"
    settings = JudgeSettings(template=template, with_context=options["with_context"],
                             orders=3 if auto else _orders(options["orders"]), auto_orders=auto,
                             repeats=options["repeats"], acceptance=config.acceptance)
    stats = JudgeStats(price_in=config.price_in, price_out=config.price_out)
    return LLMJudge(options["as_name"] or config.name, engine=ctx.obj.engine, endpoint=endpoint,
                    api_key=api_key(config), settings=settings, concurrency=options["concurrency"], stats=stats)


@app.command()
def judge(ctx: typer.Context,
          rater: str = typer.Option("rules", "--rater", help="Installed rater to run (see `rater raters`)."),
          model: Optional[str] = typer.Option(None, help="LLM judge: the model name on an OpenAI-compatible server."),
          judge_name: Optional[str] = typer.Option(None, "--judge", help="LLM judge defined in $RATER_HOME/judges.yaml."),
          base_url: Optional[str] = typer.Option(None, help="Server URL, e.g. http://localhost:8000/v1."),
          api_key_env: Optional[str] = typer.Option(None, help="Variable holding the API key (default OPENAI_API_KEY)."),
          config: Optional[Path] = typer.Option(None, help="Judges file (default $RATER_HOME/judges.yaml)."),
          concurrency: int = typer.Option(8, min=1, help="Requests in flight at once."),
          with_context: bool = typer.Option(False, help="Send the reading text too (costs tokens)."),
          as_name: Optional[str] = typer.Option(None, "--as", help="Name the ratings are stored under."),
          source: List[str] = typer.Option([], help="Only distractors from these sources."),
          split: Optional[str] = typer.Option(None, help="Only items of this split (train, dev, test)."),
          dataset: Optional[str] = typer.Option(None, help="Only items of this dataset."),
          eval_set: Optional[str] = typer.Option(None, help="Rate an evaluation set's distractors, in its order."),
          limit: Optional[int] = typer.Option(None, help="Rate at most this many items."),
          prompt: Optional[Path] = typer.Option(None, help="Own prompt file with {{question}}, {{answer}}, "
                                                            "{{distractors}} (and {{context}})."),
          orders: str = typer.Option("1", help="Rate each item in K orders and average (position bias); auto: two "
                                               "orders, and a third only where their decisions differ."),
          repeats: int = typer.Option(1, min=1, help="Ask each request this many times (never from the cache) to "
                                                     "measure how far the judge agrees with itself."),
          structured: bool = typer.Option(False, help="Ask for a JSON object via response_format (json_schema)."),
          threshold: Optional[float] = typer.Option(None, help="Accept scores above this fixed limit instead of "
                                                               "the weighted limit."),
          timeout: float = typer.Option(60.0, help="Seconds before a request is abandoned and retried."),
          max_attempts: int = typer.Option(5, min=1, help="Attempts per request before the item is marked failed."),
          retry_base: float = typer.Option(1.0, help="Seconds before the first retry; doubles each time, with jitter."),
          rpm: Optional[float] = typer.Option(None, help="At most this many requests per minute."),
          max_tokens: Optional[int] = typer.Option(None, min=1, help="Longest answer, in tokens (default 1024, or the "
                                                                     "judge's max_tokens in judges.yaml).")) -> None:
    """Rate distractors headless; only what this rater has not rated yet, each item committed at once."""
    if rater == "llm" and not (model or judge_name):
        raise InputError("The llm rater needs an endpoint.", "pass --model NAME (and --base-url) or --judge NAME")
    if model or judge_name:
        instance = _llm_judge(ctx, judge_name, model, base_url=base_url, api_key_env=api_key_env, config=config,
                              structured=structured, threshold=threshold, timeout=timeout, max_attempts=max_attempts,
                              rpm=rpm, retry_base=retry_base, prompt=prompt, with_context=with_context, orders=orders,
                              repeats=repeats,
                              as_name=as_name, concurrency=concurrency, max_tokens=max_tokens)
    else:
        instance = RATERS.load(rater)(as_name)
    if instance.interactive:
        raise InputError(f"The {rater} rater is a person: it rates on a screen, not headless.",
                         "use `rater rate` or `rater eval rate`")
    queue = Queue(ItemFilter(tuple(source), split, dataset), eval_set, limit)
    started = time.perf_counter()
    summary = _run_with_progress(ctx.obj.console, instance, ctx.obj.engine, queue)
    _print_summary(ctx.obj.console, instance, summary, time.perf_counter() - started)
    end_of_run(ctx.obj.console, failed=len(summary.failures), succeeded=summary.items, noun="item",
               nothing=f"Every item failed ({len(summary.failures)}); nothing was rated.",
               hint="read the failures above; a later run retries these items", again="rerun to retry them")


def _live_counts(instance, summary_counts: dict) -> str:
    judged = summary_counts["judged"]
    text = f"accepted {summary_counts['accepted'] / judged:.1%}" if judged else ""
    text += f"  failed {summary_counts['failed']}"
    stats = getattr(instance, "stats", None)
    if stats is not None:
        text += f"  tokens {stats.prompt_tokens + stats.completion_tokens:,}"
        if stats.price_in or stats.price_out:
            text += f"  ${stats.cost:.4f}"
    return text


def _run_with_progress(console, instance, engine, queue) -> RunSummary:
    counts = {"accepted": 0, "judged": 0, "items": 0, "failed": 0}
    with progress_bar(console, "{task.fields[counts]}") as progress:
        task = progress.add_task(instance.name, total=None, counts="")

        def rated(_item, judgements) -> None:
            counts["items"] += 1
            counts["judged"] += len(judgements)
            counts["accepted"] += sum(j.accepted for j in judgements)
            progress.update(task, advance=1, counts=_live_counts(instance, counts))

        def failed(_item, _error) -> None:
            counts["failed"] += 1
            progress.update(task, advance=1, counts=_live_counts(instance, counts))

        try:
            return asyncio.run(run_rater(instance, engine, queue, on_item=rated, on_failed=failed,
                                         on_start=lambda start: progress.update(task, total=start.pending)))
        except ServerStopped as stopped:
            raise ServerStopped(f"{stopped.message} It stopped after {plural(counts['items'], 'item')}, which are saved.",
                                stopped.hint) from None


def _print_summary(console, instance, summary: RunSummary, seconds: float) -> None:
    console.print(f"{instance.name}: rated {plural(summary.items, 'item')}, {plural(summary.judgements, 'distractor')}, "
                  f"accepted {summary.accepted_rate:.1%}; skipped {summary.skipped}; failed {len(summary.failures)}; "
                  f"{seconds:.1f} s")
    stats = getattr(instance, "stats", None)
    if stats is not None:
        cost = (f"estimated cost ${stats.cost:.4f}" if stats.price_in or stats.price_out
                else "no cost estimate (no prices for this judge in the judges file)")
        console.print(f"requests sent {stats.requests}, answered from the cache {stats.cached}, retries "
                      f"{instance.client.retries}, parse failures {stats.parse_failures}, tokens in "
                      f"{stats.prompt_tokens:,} out {stats.completion_tokens:,}, {cost}")
        if stats.auto_items:
            fixed, asked = stats.fixed_orders, stats.auto_orders
            each = f", each asked {instance.config.repeats} times" if instance.config.repeats > 1 else ""
            console.print(f"--orders auto: a third order for {stats.third_orders} of {plural(stats.auto_items, 'item')}; "
                          f"{asked} orders asked where 3 fixed orders take {fixed} ({1 - asked / fixed:.0%} fewer{each})")
        if not summary.items and not summary.failures and (instance.config.orders > 1 or instance.config.repeats > 1
                                                           or instance.config.auto_orders):
            console.print(f"Every item is rated by {instance.name} already, so no order or repeat was asked: to measure "
                          "its consistency with more orders or repeats, run it under a new name (--as NAME); the "
                          "answers it has come from the cache.")
        if stats.unrecorded:
            console.print(f"[yellow]{stats.unrecorded} request records could not be stored (ratings are)[/yellow]")
    for failure in summary.failures[:10]:
        console.print(f"[red]{failure}[/red]")
    if len(summary.failures) > 10:
        console.print(f"[red]... and {len(summary.failures) - 10} more failed items; rerun to retry them[/red]")
