"""The edges of every command: studies where everything is accepted or rejected, one item with one distractor,
twelve distractors, teachers who always agree or always disagree, a judge whose score never changes, emoji and
9,000-character texts. No command ends in the bug panel, and a command that exits 0 writes or shows something."""

import json
import random
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from rater.cli import app
from rater.core.domain import Judgement
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.tables import Distractor


def flat(result) -> str:
    return " ".join((result.output + (result.stderr if result.stderr_bytes else "")).replace("│", " ").split())


def import_rows(cli, tmp_path: Path, rows: list[dict], name: str = "items.jsonl") -> None:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cli("import", path)


def rate_all(engine, name: str, kind: str, label, score=None) -> None:
    """Every distractor rated by `name`: label(distractor index in the database) -> accepted; score likewise."""
    with Session(engine) as session:
        rows = session.execute(select(Distractor.id, Distractor.item_id).order_by(Distractor.id)).all()
        rater = get_or_create_rater(session, name=name, kind=kind)
        by_item: dict[int, list[Judgement]] = {}
        for index, (d_id, item_id) in enumerate(rows):
            by_item.setdefault(item_id, []).append(
                Judgement(d_id, label(index), score=score(index) if score else None,
                          limit=3.0 if score else None))
        for item_id, judgements in by_item.items():
            save_judgements(session, rater_id=rater.id, item_id=item_id, judgements=judgements)
        session.commit()


def plain_items(count: int, per_item: int = 4, split: str = "train", text=lambda n, k: f"fel {n}.{k}") -> list[dict]:
    return [{"context": f"Text nummer {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}", "split": split,
             "distractors": [text(n, k) for k in range(per_item)]} for n in range(count)]


def all_accepted(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(6))
    for teacher in ("anna", "bo"):
        rate_all(engine, teacher, "human", lambda i: True)
    rate_all(engine, "gpt", "llm", lambda i: True, lambda i: 4.0)


def all_rejected(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(6))
    for teacher in ("anna", "bo"):
        rate_all(engine, teacher, "human", lambda i: False)
    rate_all(engine, "gpt", "llm", lambda i: False, lambda i: 1.0)


def one_item_one_distractor(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(1, per_item=1))
    rate_all(engine, "anna", "human", lambda i: True)


def twelve_distractors(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(2, per_item=12))
    rate_all(engine, "anna", "human", lambda i: i % 3 == 0)
    rate_all(engine, "gpt", "llm", lambda i: i % 2 == 0, lambda i: 1.0 + i % 5)


def teachers_always_agree_constant_judge(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(20))
    rng = random.Random(3)
    labels = [rng.random() < 0.5 for _ in range(80)]
    for teacher in ("anna", "bo"):
        rate_all(engine, teacher, "human", lambda i: labels[i])
    rate_all(engine, "gpt", "llm", lambda i: True, lambda i: 4.0)


def teachers_always_disagree(cli, engine, tmp_path):
    import_rows(cli, tmp_path, plain_items(20))
    rate_all(engine, "anna", "human", lambda i: i % 2 == 0)
    rate_all(engine, "bo", "human", lambda i: i % 2 == 1)
    rate_all(engine, "gpt", "llm", lambda i: i % 3 == 0, lambda i: 1.0 + i % 5)


def emoji_and_long_texts(cli, engine, tmp_path):
    long = "Ett mycket långt stycke text. " * 300  # 9,000 characters
    rows = [{"context": long, "question": "Vad betyder 🙂 här? " + "x" * 100, "answer": "ett leende 😊",
             "split": "train", "distractors": ["en ledsen 😢", "ett 🚀", long[:2000], "Ölandsbron 🌉"]},
            {"context": "Kort 🙃.", "question": "Vem? 👩‍🏫", "answer": "läraren", "split": "test",
             "distractors": ["eleven 🧒", "rektorn", "🦉"]}]
    import_rows(cli, tmp_path, rows)
    rate_all(engine, "anna", "human", lambda i: i % 2 == 0)
    rate_all(engine, "gpt", "llm", lambda i: i % 3 == 0, lambda i: 1.0 + i % 5)


STUDIES = [all_accepted, all_rejected, one_item_one_distractor, twelve_distractors,
           teachers_always_agree_constant_judge, teachers_always_disagree, emoji_and_long_texts]

# Commands the sweep cannot run unattended, and why (the walk below fails when a new command is in neither list).
NOT_SWEPT = {("rate",): "opens the rating screen", ("eval", "rate"): "opens the rating screen",
             ("browse",): "opens the browse screen (its edges: tests/test_browse.py)",
             ("serve",): "serves until stopped (tests/test_serve.py)",
             ("train",): "trains a model (tests/test_training*.py)"}


def sweep_commands(out: Path) -> list[list[str]]:
    """Every command with the options a user at the edge would give it."""
    return [["db", "stats"], ["raters"], ["generators"], ["split"], ["split", "--test-fraction", "0"],
            ["split", "--test-fraction", "1"], ["report"], ["report", "--format", "json"],
            ["report", "--format", "csv"], ["report", "--format", "markdown"],
            ["report", "--plot", str(out / "report.png")],
            ["calibrate", "--judge", "gpt", "--against", "anna,bo", "--min-shared", "1"],
            ["calibrate", "--judge", "gpt", "--against", "anna", "--min-shared", "1"],
            ["export", "sft", "--split", "all", "-o", str(out / "sft.json")],
            ["export", "pref", "--split", "all", "-o", str(out / "pref.json")],
            ["export", "kto", "--split", "all", "-o", str(out / "kto.jsonl")],
            ["export", "kto", "-o", str(out / "kto-train.jsonl")],
            ["eval", "build", "edge", "--sources", "human", "--split", "all", "--per-item", "1"],
            ["eval", "build", "edge2", "--sources", "human", "--items", "100"],
            ["eval", "list"], ["study", "overlap"], ["study", "overlap", "2"], ["study", "overlap", "--off"],
            ["study", "status"], ["study", "status", "--format", "json"],
            ["judge", "--rater", "rules"], ["generate", "--generator", "baseline", "--source", "b", "--split", "all"],
            ["report", "--estimate-with", "gpt"], ["plan", "--target-width", "0.1"],
            ["plan", "--target-width", "0.1", "--estimate-with", "gpt", "--format", "json"],
            ["panel", "list"], ["panel", "create", "jury", "--judges", "gpt,rules"],
            ["panel", "create", "avg", "--judges", "gpt,rules", "--rule", "mean"], ["panel", "list"],
            ["panel", "delete", "nosuch"],
            ["export", "kto", "--split", "all", "-o", str(out / "gated.jsonl"), "--min-kappa", "0.2"],
            ["panel", "delete", "jury"],
            ["teachers", "add", "cleo"], ["teachers", "list"], ["teachers", "revoke", "cleo"],
            ["import", str(out / "items.jsonl")], ["demo", "--if-empty"]]


def test_the_sweep_covers_every_command(tmp_path):
    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path
    swept = sweep_commands(tmp_path)
    for path in walk(typer.main.get_command(app), ()):
        covered = any(args[:len(path)] == list(path) for args in swept)
        assert path in NOT_SWEPT or covered, f"sweep `rater {' '.join(path)}` too"


@pytest.mark.parametrize("study", STUDIES, ids=lambda f: f.__name__)
def test_no_command_ends_in_the_bug_panel_and_exit_0_always_says_something(study, cli, engine, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("RATER_HOME", str(tmp_path / "home"))
    study(cli, engine, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "items.jsonl").write_text((tmp_path / "items.jsonl").read_text())
    runner = CliRunner()
    problems = []
    for args in sweep_commands(out):
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        result = runner.invoke(app, ["--db", str(cli.db_path), *args])
        text = flat(result)
        written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()} != before
        if result.exit_code not in (0, 2, 3) or "this is a bug" in text or "Traceback" in text:
            problems.append(f"rater {' '.join(args)}: exit {result.exit_code}: {text[:400]} {result.exception!r}")
        elif result.exit_code == 0 and not text and not written:
            problems.append(f"rater {' '.join(args)}: exit 0 with nothing written and nothing said")
        elif result.exit_code == 2 and "rater: error" not in text:
            problems.append(f"rater {' '.join(args)}: exit 2 without a reason")
    assert not problems, "\n".join(problems)


# the numbered cases of the issue, one by one -------------------------------------------------------------------

def test_report_plot_at_100_percent_clamps_the_interval_everywhere(cli, engine, tmp_path):
    cli("demo", "--baseline", "2")
    cli("judge", "--rater", "rules")  # accepts every baseline distractor: 24 / 24
    result = cli("report", "--format", "json", "--plot", tmp_path / "plot.png")
    data = json.loads(result.stdout)
    assert data["sources"]["baseline"]["rate"] == 1.0 and data["sources"]["baseline"]["ci95"][1] == 1.0
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sources,,baseline,24,24,1.0," in cli("report", "--format", "csv").stdout
    from rater.evaluation.agreement import wilson
    for total in range(1, 200):  # the rate always lies inside its interval, at 0 and 1 too
        for accepted in (0, total // 2, total):
            lo, hi = wilson(accepted, total)
            assert 0 <= lo <= accepted / total <= hi <= 1


def test_calibrate_refuses_a_constant_judge(cli, engine, tmp_path):
    teachers_always_agree_constant_judge(cli, engine, tmp_path)
    result = cli("calibrate", "--judge", "gpt", "--against", "anna", "--save", ok=False)
    assert result.exit_code == 2 and "same score (4)" in flat(result) and "nothing to fit" in flat(result)


def test_calibrate_says_shared_distractors_are_ties_not_unshared(cli, engine, tmp_path):
    teachers_always_disagree(cli, engine, tmp_path)
    result = cli("calibrate", "--judge", "gpt", "--against", "anna,bo", ok=False)
    assert result.exit_code == 2
    assert "Only 0 distractors" in flat(result) and "80 more are shared, but the teachers split evenly" in flat(result)


def test_calibrate_checks_the_kinds_of_raters(cli, engine, tmp_path):
    teachers_always_disagree(cli, engine, tmp_path)
    rate_all(engine, "claude", "llm", lambda i: True, lambda i: 3.0)
    for args, said in ((("--judge", "gpt", "--against", "gpt"), "names the judge gpt itself"),
                       (("--judge", "gpt", "--against", "claude"), "claude is not a teacher"),
                       (("--judge", "anna", "--against", "bo"), "anna is a human rater, not an LLM judge"),
                       (("--judge", "gpt", "--against", "nobody"), "No rater named nobody")):
        result = cli("calibrate", *args, ok=False)
        assert result.exit_code == 2 and said in flat(result), args


def test_calibration_breaks_ties_with_the_simplest_rule(engine, tmp_path):
    from rater.evaluation.calibration import Case, best_rule

    # scores 2 and 4 only: every threshold from 2 up to 3.75 (and many weighted limits) separates them alike
    cases = [Case(n, 4.0 if n % 2 else 2.0, [2.0, 4.0], True, bool(n % 2)) for n in range(40)]
    rule, kappa = best_rule(cases)
    assert kappa == 1.0 and rule.rule == "threshold" and rule.threshold == 2.0
    assert best_rule(list(reversed(cases)))[0] == rule  # the same whatever the order of the cases


def test_kappa_and_alpha_agree_on_when_they_are_undefined(cli, engine, tmp_path):
    all_accepted(cli, engine, tmp_path)
    data = json.loads(cli("report", "--format", "json").stdout)
    assert data["agreement"]["alpha"] is None
    assert all(pair["kappa"] is None for pair in data["agreement"]["pairs"])
    assert "every label is the same" in data["agreement"]["note"]
    assert "every label is the same" in flat(cli("report"))


def test_agreement_with_one_rater_says_why_it_is_empty(cli, engine, tmp_path):
    one_item_one_distractor(cli, engine, tmp_path)
    data = json.loads(cli("report", "--format", "json").stdout)
    assert data["agreement"]["pairs"] == [] and "needs two raters" in data["agreement"]["note"]


def test_every_report_format_carries_every_section(cli, engine, tmp_path):
    twelve_distractors(cli, engine, tmp_path)
    from rater.core.domain import Judgement as J
    with Session(engine) as session:
        first = session.execute(select(Distractor.id, Distractor.item_id)).first()
        rater = get_or_create_rater(session, name="anna", kind="human")
        save_judgements(session, rater_id=rater.id, item_id=first.item_id,
                        judgements=[J(first.id, False, reason="identical")])
        session.commit()
    csv_text = cli("report", "--format", "csv", "--estimate-with", "gpt").stdout
    sections = {line.split(",")[0] for line in csv_text.splitlines()[1:]}
    assert sections == {"sources", "raters", "by_length", "agreement", "judges", "consistency", "cost", "estimate",
                        "reasons"}
    assert "reasons,identical" in csv_text and "judges,gpt,,,,,,,anna," in csv_text
    markdown = cli("report", "--format", "markdown").stdout
    assert "| reason | count |" in markdown and "| identical | 1 |" in markdown
    assert "judge accepts | teacher accepts" in markdown


def test_eval_build_validates_every_option(cli):
    cli("demo")
    cases = [(("--per-item", "-1"), "--per-item must be 1 or more, got -1"),
             (("--per-item", "0"), "--per-item must be 1 or more, got 0"),
             (("--items", "-5"), "--items must be 1 or more, got -5"),
             (("--sources", "nosuch"), "No distractors from source 'nosuch'"),
             (("--sources", ","), "--sources names no source"),
             (("--split", "train"), "No items in split 'train'; the items here are in: test 12")]
    for args, said in cases:
        options = {"--sources": "human", "--per-item": "2", **dict(zip(args[::2], args[1::2]))}
        result = cli("eval", "build", "set", *[x for pair in options.items() for x in pair], ok=False)
        assert result.exit_code == 2 and said in flat(result), args
    result = cli("eval", "build", "set", "--sources", "human", "--per-item", "2", "--items", "100")
    assert "Built set: 12 items, 24 slots. Only 12 items of the 100 asked for could be drawn." in flat(result)


def test_split_edges(cli):
    cli("demo")
    assert "train 12, test 0" in flat(cli("split", "--resplit", "--test-fraction", "0"))
    assert "train 0, test 12" in flat(cli("split", "--resplit", "--test-fraction", "1"))
    result = cli("split", "--test-fraction", "1.5", ok=False)
    assert result.exit_code == 2 and "from 0 (no test split) to 1 (everything test)" in flat(result)
    for tokens in ("0", "-5"):  # every item would be excluded
        result = cli("split", "--max-context-tokens", tokens, ok=False)
        assert result.exit_code == 2 and "--max-context-tokens must be 1 or more" in flat(result)
    result = cli("split", "--dataset", "nosuch", ok=False)
    assert result.exit_code == 2 and "datasets here: demo" in flat(result)


def test_study_overlap_0_suggests_what_that_command_takes(cli):
    cli("demo")
    result = cli("study", "overlap", "0", ok=False)
    assert result.exit_code == 2 and "--overlap" not in flat(result) and "rater study overlap 2" in flat(result)


def test_browse_with_an_unknown_rater_or_source_is_an_error(cli):
    cli("demo")
    cli("judge", "--rater", "rules")
    assert "raters here: rules" in flat(cli("browse", "--rater", "nobody", ok=False))
    assert "sources here: human" in flat(cli("browse", "--source", "nosuch", ok=False))
    nothing = cli("--db", str(cli.db_path), "browse", "--set", "nosuch", ok=False)
    assert nothing.exit_code == 2


def test_pref_export_counts_ties_between_teachers(cli, engine, tmp_path):
    teachers_always_disagree(cli, engine, tmp_path)
    result = cli("export", "kto", "--rater", "anna", "--rater", "bo", "-o", tmp_path / "k.jsonl", ok=False)
    assert result.exit_code == 2 and "80 distractors the raters split evenly on" in flat(result)
