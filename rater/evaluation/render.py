"""Rendering the report: rich tables, Markdown, CSV, JSON, and the acceptance plot (PNG)."""

import csv
import io
import json
from pathlib import Path

from rich.console import Group
from rich.table import Table

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
    parts = []
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
    parts.append(_agreement_table(data))
    parts.append(_judges_table(data))
    if data.get("reasons"):
        reasons = Table(title="Rejection reasons", title_justify="left")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in data["reasons"].items():
            reasons.add_row(reason, str(count))
        parts.append(reasons)
    return Group(*parts)


def _agreement_table(data: dict) -> Table:
    table = Table(title=f"Agreement (Krippendorff's alpha {number(data['agreement']['alpha'])})", title_justify="left")
    for column in ("rater a", "rater b", "shared", "agreement", "Cohen's kappa"):
        table.add_column(column)
    for p in data["agreement"]["pairs"]:
        table.add_row(p["a"], p["b"], str(p["n"]), percent(p["percent"]), number(p["kappa"]))
    return table


def _judges_table(data: dict) -> Table:
    table = Table(title="Judges versus teachers (accept = positive)", title_justify="left")
    for column in ("judge", "versus", "shared", "judge accepts", "teacher accepts", "precision", "recall", "kappa"):
        table.add_column(column)
    for judge, entry in data["judges"].items():
        for human, s in entry["vs"].items():
            table.add_row(judge, human, str(s["n"]), percent(s["judge_rate"]), percent(s["human_rate"]),
                          percent(s["precision"]), percent(s["recall"]), number(s["kappa"]))
    return table


def as_markdown(data: dict) -> str:
    lines = ["| section | group | source | accepted | total | rate | 95% CI |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for section, group, label, e in rate_rows(data):
        lo, hi = e["ci95"]
        lines.append(f"| {section} | {group} | {label} | {e['accepted']} | {e['total']} | {percent(e['rate'])} | "
                     f"{lo:.1%}-{hi:.1%} |")
    lines += ["", f"Krippendorff's alpha: {number(data['agreement']['alpha'])}", "",
              "| rater a | rater b | shared | agreement | kappa |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {p['a']} | {p['b']} | {p['n']} | {percent(p['percent'])} | {number(p['kappa'])} |"
              for p in data["agreement"]["pairs"]]
    lines += ["", "| judge | versus | shared | precision | recall | kappa |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {j} | {h} | {s['n']} | {percent(s['precision'])} | {percent(s['recall'])} | {number(s['kappa'])} |"
              for j, e in data["judges"].items() for h, s in e["vs"].items()]
    return "\n".join(lines) + "\n"


def as_csv(data: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "group", "source", "accepted", "total", "rate", "ci95_low", "ci95_high"])
    for section, group, label, e in rate_rows(data):
        writer.writerow([section, group, label, e["accepted"], e["total"], e["rate"], *e["ci95"]])
    return out.getvalue()


def as_json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_plot(data: dict, path: Path) -> None:
    """Two panels: acceptance per source with 95% intervals, and short versus long distractors per source."""
    try:
        import matplotlib
    except ImportError as exc:
        raise InputError("--plot needs matplotlib.", "pip install 'rater[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_output_folder(path)
    sources = list(data["sources"])
    figure, (overall, lengths) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    rates = [data["sources"][s]["rate"] or 0 for s in sources]
    errors = [[r - data["sources"][s]["ci95"][0] for s, r in zip(sources, rates)],
              [data["sources"][s]["ci95"][1] - r for s, r in zip(sources, rates)]]
    overall.bar(sources, rates, yerr=errors, capsize=4, color="#4c72b0")
    overall.set_title("Accepted per source (95% CI)")
    width = 0.38
    for offset, size, colour in ((-width / 2, "short", "#55a868"), (width / 2, "long", "#c44e52")):
        values = [(data["by_length"][size].get(s) or {}).get("rate") or 0 for s in sources]
        lengths.bar([i + offset for i in range(len(sources))], values, width, label=f"{size} "
                    f"({'<=' if size == 'short' else '>'} 2 words)", color=colour)
    lengths.set_xticks(range(len(sources)), sources)
    lengths.set_title("Accepted by distractor length")
    lengths.legend()
    for axis in (overall, lengths):
        axis.set_ylim(0, 1)
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
