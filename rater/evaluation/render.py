"""Rendering the report: rich tables, Markdown, CSV, JSON, and the acceptance plot (PNG)."""

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rater.core.errors import InputError
from rater.data.exports import check_output_folder

RATE_SECTIONS = ("sources", "filtered")


def percent(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def rate_rows(data: dict) -> list[tuple[str, str, str, dict]]:
    """(section, group, source, entry) for every acceptance figure in the report."""
    rows = [(s, "", label, e) for s in RATE_SECTIONS for label, e in data[s].items()]
    rows += [("raters", name, label, e) for name, per in data["raters"].items() for label, e in per.items()]
    rows += [("by_length", size, label, e) for size, per in data["by_length"].items() for label, e in per.items()]
    return rows


def _rate_cell(entry: dict) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['accepted']} / {entry['total']} ({percent(entry['rate'])}, 95% CI {lo:.1%}-{hi:.1%})"


def as_tables(data: dict) -> Group:
    parts: list[Table | Text] = []
    titles = {"sources": "Acceptance per source", "filtered": "Filtered: items whose human distractors every "
              "teacher accepted", "raters": "Acceptance per rater", "by_length": "Short (<= 2 words) vs long"}
    grouped: dict[str, list] = {}
    for section, group, label, entry in rate_rows(data):
        grouped.setdefault(section, []).append((group, label, entry))
    for section, rows in grouped.items():
        table = Table(title=titles[section], title_justify="left")
        for column in (("group",) if section in ("raters", "by_length") else ()) + ("source", "accepted"):
            table.add_column(column)
        for group, label, entry in rows:
            table.add_row(*((group,) if section in ("raters", "by_length") else ()), label, _rate_cell(entry))
        parts.append(table)
    if estimate_rows(data):
        parts.append(_table(f"Estimates with {estimate_judge(data)}: teachers' acceptance from the judge's labels and "
                            "the teachers' (prediction-powered, 95% intervals)", ESTIMATE_COLUMNS, estimate_rows(data)))
        if difference_rows(data):
            parts.append(_table("Differences between sources (estimated)", DIFFERENCE_COLUMNS, difference_rows(data)))
        if data.get("estimate_note"):
            parts.append(Text(f"Warning: {data['estimate_note']}.", style="yellow"))
    parts.append(_agreement_table(data))
    parts.append(_judges_table(data))
    if trust_rows(data):
        parts.append(_table("Judges' consistency and cost", TRUST_COLUMNS, trust_rows(data),
                            caption="same in every order / on a repeated request: share of distractors with one "
                                    "decision; by position: acceptance by the place an option was shown in"))
    if data.get("reasons"):
        reasons = Table(title="Rejection reasons", title_justify="left")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in data["reasons"].items():
            reasons.add_row(reason, str(count))
        parts.append(reasons)
    return Group(*parts)


def _agreement_table(data: dict) -> Table:
    note = data["agreement"].get("note")
    table = Table(title=f"Agreement (Krippendorff's alpha {number(data['agreement']['alpha'])})", title_justify="left",
                  caption=f"Note: {note}." if note else None, caption_justify="left")
    for column in ("rater a", "rater b", "shared", "agreement", "Cohen's kappa"):
        table.add_column(column)
    for p in data["agreement"]["pairs"]:
        table.add_row(p["a"], p["b"], str(p["n"]), percent(p["percent"]), number(p["kappa"]))
    return table


def _judges_table(data: dict) -> Table:
    table = Table(title="Judges versus teachers (accept = positive)", title_justify="left",
                  caption=None if data["judges"] else "No judge or rule rater rated in this scope.",
                  caption_justify="left")
    for column in JUDGE_COLUMNS:
        table.add_column(column)
    for row in judge_rows(data):
        table.add_row(*row)
    return table


JUDGE_COLUMNS = ("judge", "versus", "shared", "judge accepts", "teacher accepts", "precision", "recall", "kappa")


def judge_rows(data: dict) -> list[tuple[str, ...]]:
    return [(judge, human, str(s["n"]), percent(s["judge_rate"]), percent(s["human_rate"]), percent(s["precision"]),
             percent(s["recall"]), number(s["kappa"])) for judge, entry in data["judges"].items()
            for human, s in entry["vs"].items()]


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


DIFFERENCE_COLUMNS = ("sources", "difference", "95% CI", "a real difference?")
ESTIMATE_COLUMNS = ("source", "teachers only (by item)", "teachers + judge", "teacher / judge-only distractors",
                    "note")


def estimate_judge(data: dict) -> str:
    return next((e["estimate"]["judge"] for e in data["sources"].values() if "estimate" in e), "")


def _interval(entry: dict) -> str:
    if entry.get("rate") is None:
        return "-"
    low, high = entry["ci95"]
    return f"{entry['rate']:.1%} [{low:.1%}, {high:.1%}] (width {high - low:.1%})"


def estimate_rows(data: dict) -> list[tuple[str, ...]]:
    return [(source, _interval(e["estimate"]["teachers_only"]), _interval(e["estimate"]),
             f"{e['estimate']['teacher_n']} / {e['estimate']['judge_n']}", _estimate_note(e["estimate"]))
            for source, e in data["sources"].items() if "estimate" in e]


def _estimate_note(estimate: dict) -> str:
    if estimate.get("reason"):
        return estimate["reason"]
    notes = ["from the judge's labels and scores"] if estimate.get("predictors") == "label and score" else []
    return "; ".join(notes + ([estimate["note"]] if estimate.get("note") else []))


def difference_rows(data: dict) -> list[tuple[str, ...]]:
    return [(pair, f"{d['difference']:+.1%}", f"[{d['ci95'][0]:+.1%}, {d['ci95'][1]:+.1%}]",
             "yes (the interval excludes 0)" if d["excludes_zero"] else "not shown (the interval includes 0)")
            for pair, d in data.get("estimate_differences", {}).items()]


TRUST_COLUMNS = ("judge", "same in every order", "same on a repeat", "accepted by position",
                 "tokens / 1,000 distractors", "cost / 1,000 distractors")


def trust_rows(data: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for judge, entry in data["judges"].items():
        if "consistency" not in entry:
            continue
        c, cost = entry["consistency"], entry["cost"]
        positions = ", ".join(f"{p}: {percent(v['accepted_rate'])}" for p, v in c["by_position"].items()) or "-"
        rows.append((judge, f"{percent(c['orders'])} (n {c['orders_n']})" if c["orders"] is not None else "- (one order)",
                     f"{percent(c['repeats'])} (n {c['repeats_n']})" if c["repeats"] is not None else "- (no repeats)",
                     positions, "-" if cost["tokens_per_1000"] is None else f"{cost['tokens_per_1000']:,.0f}",
                     "- (no prices in judges.yaml)" if cost["cost_per_1000"] is None else f"${cost['cost_per_1000']:.4f}"))
    return rows


def _markdown_table(header: tuple[str, ...], rows) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(map(str, row)) + " |" for row in rows]


def as_markdown(data: dict) -> str:
    lines = _markdown_table(("section", "group", "source", "accepted", "total", "rate", "95% CI"), [
        (section, group, label, e["accepted"], e["total"], percent(e["rate"]), f"{e['ci95'][0]:.1%}-{e['ci95'][1]:.1%}")
        for section, group, label, e in rate_rows(data)])
    note = data["agreement"].get("note")
    lines += ["", f"Krippendorff's alpha: {number(data['agreement']['alpha'])}", ""]
    lines += _markdown_table(("rater a", "rater b", "shared", "agreement", "kappa"), [
        (p["a"], p["b"], p["n"], percent(p["percent"]), number(p["kappa"])) for p in data["agreement"]["pairs"]])
    lines += [""] + ([f"Note: {note}.", ""] if note else [])
    lines += _markdown_table(JUDGE_COLUMNS, judge_rows(data))
    if trust_rows(data):
        lines += ["", *_markdown_table(TRUST_COLUMNS, trust_rows(data))]
    if estimate_rows(data):
        lines += ["", f"Estimates with {estimate_judge(data)} (prediction-powered, 95% intervals):", "",
                  *_markdown_table(ESTIMATE_COLUMNS, estimate_rows(data))]
        if difference_rows(data):
            lines += ["", *_markdown_table(DIFFERENCE_COLUMNS, difference_rows(data))]
        if data.get("estimate_note"):
            lines += ["", f"Warning: {data['estimate_note']}."]
    if data["reasons"]:
        lines += ["", *_markdown_table(("reason", "count"), data["reasons"].items())]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("section", "group", "source", "accepted", "total", "rate", "ci95_low", "ci95_high", "versus", "n",
               "percent", "kappa", "precision", "recall", "judge_rate", "human_rate", "value")


def as_csv(data: dict) -> str:
    """One table with every section: acceptance rows fill the first columns; agreement pairs (group = rater a,
    versus = rater b), alpha (value), judges (group = judge, versus = teacher or majority), their consistency
    (versus = orders, repeats or position N; rate) and cost (value), estimates (group = judge, source, versus =
    teachers+judge or teachers only) and reasons (group = reason, value = count) the others; `note` rows say why a
    figure is undefined."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for section, group, label, e in rate_rows(data):
        writer.writerow(dict(section=section, group=group, source=label, accepted=e["accepted"], total=e["total"],
                             rate=e["rate"], ci95_low=e["ci95"][0], ci95_high=e["ci95"][1]))
    for p in data["agreement"]["pairs"]:
        writer.writerow(dict(section="agreement", group=p["a"], versus=p["b"], n=p["n"], percent=p["percent"],
                             kappa=p["kappa"]))
    writer.writerow(dict(section="agreement", group="alpha", value=data["agreement"]["alpha"]))
    if data["agreement"].get("note"):
        writer.writerow(dict(section="agreement", group="note", value=data["agreement"]["note"]))
    for judge, entry in data["judges"].items():
        for human, v in entry["vs"].items():
            writer.writerow(dict(section="judges", group=judge, versus=human, n=v["n"], kappa=v["kappa"],
                                 precision=v["precision"], recall=v["recall"], judge_rate=v["judge_rate"],
                                 human_rate=v["human_rate"]))
        if "consistency" in entry:  # LLM judges: consistency (rate = share decided alike) and cost (value)
            c = entry["consistency"]
            writer.writerow(dict(section="consistency", group=judge, versus="orders", rate=c["orders"], n=c["orders_n"]))
            writer.writerow(dict(section="consistency", group=judge, versus="repeats", rate=c["repeats"],
                                 n=c["repeats_n"]))
            for place, v in c["by_position"].items():
                writer.writerow(dict(section="consistency", group=judge, versus=f"position {place}",
                                     rate=v["accepted_rate"], n=v["n"]))
            for key in ("tokens_per_1000", "cost_per_1000"):
                writer.writerow(dict(section="cost", group=judge, versus=key, value=entry["cost"][key],
                                     n=entry["cost"]["distractors"]))
    for label, e in data["sources"].items():  # with --estimate-with: source = label, group = judge
        if "estimate" in e:
            est = e["estimate"]
            for versus, figure in (("teachers+judge", est), ("teachers only", est["teachers_only"])):
                low, high = figure["ci95"] or (None, None)
                writer.writerow(dict(section="estimate", group=est["judge"], source=label, versus=versus,
                                     rate=figure["rate"], ci95_low=low, ci95_high=high, n=figure["teacher_n"],
                                     value=figure.get("reason") or figure.get("note") or ""))
    if data.get("estimate_note"):
        writer.writerow(dict(section="estimate", group="note", value=data["estimate_note"]))
    for pair, d in data.get("estimate_differences", {}).items():
        writer.writerow(dict(section="estimate difference", group=pair, rate=d["difference"], ci95_low=d["ci95"][0],
                             ci95_high=d["ci95"][1]))
    for reason, count in data["reasons"].items():
        writer.writerow(dict(section="reasons", group=reason, value=count))
    return out.getvalue()


def as_json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def plot_groups(data: dict) -> list[tuple[str, dict]]:
    """The bars of each source: the teachers together (or every rater, when no teacher rated), then each judge and
    rule rater on its own, side by side."""
    kinds = data.get("kinds", {})
    teachers = any(kind == "human" for kind in kinds.values())
    groups = [("teachers" if teachers else "all raters", data["sources"])]
    if teachers:
        groups += [(name, data["raters"][name]) for name, kind in kinds.items() if kind != "human"]
    return groups


def write_plot(data: dict, path: Path) -> None:
    """Two panels: acceptance per source with 95% intervals (teachers and each judge side by side), and short
    versus long distractors per source; n under every bar."""
    try:
        import matplotlib
    except ImportError as exc:
        raise InputError("--plot needs matplotlib.", "pip install 'rater[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_output_folder(path)
    sources = list(data["sources"]) or sorted({s for per in data["raters"].values() for s in per})
    figure, (overall, lengths) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    _bars(overall, sources, plot_groups(data), error_bars=True)
    overall.set_title("Accepted per source (95% CI)")
    _bars(lengths, sources, [(f"{size} ({'<=' if size == 'short' else '>'} 2 words)", data["by_length"][size])
                             for size in ("short", "long")], error_bars=False)
    lengths.set_title("Accepted by distractor length")
    for axis in (overall, lengths):
        axis.set_ylim(0, 1.12)
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _bars(axis, sources: list[str], groups: list[tuple[str, dict]], error_bars: bool) -> None:
    """Grouped bars, one group per source and one bar per (label, figures) group; "n=..." above each bar."""
    width = 0.8 / max(1, len(groups))
    for index, (label, figures) in enumerate(groups):
        xs = [n + (index - (len(groups) - 1) / 2) * width for n in range(len(sources))]
        entries = [figures.get(source) for source in sources]
        rates = [e["rate"] or 0 if e else 0 for e in entries]
        errors = None
        if error_bars:
            errors = [[r - e["ci95"][0] if e else 0 for r, e in zip(rates, entries)],
                      [e["ci95"][1] - r if e else 0 for r, e in zip(rates, entries)]]
        axis.bar(xs, rates, width, yerr=errors, capsize=3, label=label, color=COLOURS[index % len(COLOURS)])
        for x, e in zip(xs, entries):
            axis.text(x, 1.02, f"n={e['total']}" if e else "n=0", ha="center", va="bottom", fontsize=7)
    axis.set_xticks(range(len(sources)), sources)
    axis.legend(fontsize=8, loc="lower right")
