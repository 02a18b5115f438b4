"""The report reproduces the published figures; agreement statistics match independent implementations."""

import json
import struct

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.tables import Context, Distractor, Item

# SPEC section 7: distractors per source and acceptances per teacher
PUBLISHED = {"dpo": (124, 62, 57), "sft": (142, 70, 51), "human": (134, 95, 70)}


def add_items(session: Session, texts_by_item: list[list[tuple[str, str]]]) -> list[list[int]]:
    """Items with (text, source) distractors; returns distractor ids per item."""
    ids = []
    for n, distractors in enumerate(texts_by_item):
        context = Context(text=f"Text {n}", sha256=f"c{n}")
        session.add(context)
        session.flush()
        item = Item(context_id=context.id, question=f"Fråga {n}?", answer=f"svar {n}", dataset="t", record=str(n),
                    key=f"k{n}", split="test")
        session.add(item)
        session.flush()
        rows = [Distractor(item_id=item.id, text=t, source=s, key=f"{n}-{i}", position=i)
                for i, (t, s) in enumerate(distractors)]
        session.add_all(rows)
        session.flush()
        ids.append([d.id for d in rows])
    return ids


def rate(session, name, kind, item_ids, labels, scores=None):
    rater = get_or_create_rater(session, name=name, kind=kind)
    for item_id, (distractor_ids, item_labels) in enumerate(zip(item_ids, labels), 1):
        judgements = [Judgement(d, a, score=(scores[item_id - 1][i] if scores else None))
                      for i, (d, a) in enumerate(zip(distractor_ids, item_labels)) if a is not None]
        if judgements:
            save_judgements(session, rater_id=rater.id, item_id=item_id, judgements=judgements)


@pytest.fixture
def published(engine):
    slots = [(f"{source} {i}", source) for source, (total, _, _) in PUBLISHED.items() for i in range(total)]
    items = [slots[i:i + 4] for i in range(0, len(slots), 4)]
    with Session(engine) as session:
        ids = add_items(session, items)
        for teacher, column in (("teacher1", 1), ("teacher2", 2)):
            counters = {s: 0 for s in PUBLISHED}
            labels = []
            for item in items:
                row = []
                for _, source in item:
                    row.append(counters[source] < PUBLISHED[source][column])
                    counters[source] += 1
                labels.append(row)
            rate(session, teacher, "human", ids, labels)
        session.commit()


def test_report_reproduces_published_acceptance(cli, published):
    data = json.loads(cli("report", "--format", "json").stdout)
    rates = {s: round(100 * e["rate"], 1) for s, e in data["sources"].items()}
    assert rates == {"dpo": 48.0, "sft": 42.6, "human": 61.6}
    assert (data["sources"]["dpo"]["accepted"], data["sources"]["dpo"]["total"]) == (119, 248)
    per_teacher = {(t, s): round(100 * e["rate"], 1) for t, per in data["raters"].items() for s, e in per.items()}
    assert per_teacher == {("teacher1", "dpo"): 50.0, ("teacher2", "dpo"): 46.0, ("teacher1", "sft"): 49.3,
                           ("teacher2", "sft"): 35.9, ("teacher1", "human"): 70.9, ("teacher2", "human"): 52.2}
    lo, hi = data["sources"]["sft"]["ci95"]
    assert lo < 0.426 < hi and hi - lo < 0.13
    table = " ".join(cli("report").output.split())
    for figure in ("119 / 248 (48.0%", "121 / 284 (42.6%", "165 / 268 (61.6%", "62 / 124 (50.0%", "51 / 142 (35.9%",
                   "95 / 134 (70.9%", "70 / 134 (52.2%"):
        assert figure in table


@pytest.fixture
def small(engine):
    """3 items; hand-checkable: two teachers and one judge."""
    items = [[("kort", "human"), ("ett mycket längre svar här", "sft"), ("två ord", "dpo")],
             [("lång distraktor med ord", "human"), ("x", "sft"), ("y z", "human")],
             [("ett", "sft"), ("två tre fyra", "dpo"), ("fem", "human")]]
    t1 = [[True, False, True], [True, True, True], [False, True, True]]
    t2 = [[True, True, False], [True, False, True], [True, False, True]]
    judge = [[True, True, True], [False, True, True], [True, None, True]]
    with Session(engine) as session:
        ids = add_items(session, items)
        rate(session, "t1", "human", ids, t1)
        rate(session, "t2", "human", ids, t2)
        rate(session, "gpt", "llm", ids, judge)
        session.commit()
    return t1, t2, judge


def flat(labels):
    return [x for row in labels for x in row]


def test_hand_checked_views_and_agreement(cli, small):
    t1, t2, judge = small
    data = json.loads(cli("report", "--format", "json").stdout)
    # filtered: both teachers accepted every human distractor of all three items, so nothing is filtered out
    assert data["filtered"] == data["sources"]
    # length view from the teachers' ratings: short <= 2 words
    short = {s: (e["accepted"], e["total"]) for s, e in data["by_length"]["short"].items()}
    assert short == {"dpo": (1, 2), "human": (6, 6), "sft": (2, 4)}
    long_ = {s: (e["accepted"], e["total"]) for s, e in data["by_length"]["long"].items()}
    assert long_ == {"dpo": (1, 2), "human": (2, 2), "sft": (1, 2)}
    pairs = {(p["a"], p["b"]): p for p in data["agreement"]["pairs"]}
    assert pairs["t1", "t2"]["kappa"] == pytest.approx(cohen_kappa_score(flat(t1), flat(t2)))
    assert pairs["t1", "t2"]["n"] == 9 and pairs["gpt", "t1"]["n"] == 8
    reliability = np.array([[np.nan if x is None else float(x) for x in flat(labels)] for labels in (t1, t2, judge)])
    assert data["agreement"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal"))
    vs_t1 = data["judges"]["gpt"]["vs"]["t1"]
    shared = [(j, t) for j, t in zip(flat(judge), flat(t1)) if j is not None]
    tp = sum(j and t for j, t in shared)
    assert vs_t1["precision"] == pytest.approx(tp / sum(j for j, _ in shared))
    assert vs_t1["recall"] == pytest.approx(tp / sum(t for _, t in shared))


def test_filtered_view_drops_items_with_a_rejected_human_distractor(cli, engine):
    items = [[("h1", "human"), ("s1", "sft")], [("h2", "human"), ("s2", "sft")], [("s3", "sft"), ("d3", "dpo")]]
    with Session(engine) as session:
        ids = add_items(session, items)
        rate(session, "t1", "human", ids, [[True, True], [True, False], [True, True]])
        rate(session, "t2", "human", ids, [[True, False], [False, True], [True, True]])
        session.commit()
    data = json.loads(cli("report", "--format", "json").stdout)
    # item 1 only: item 2's human distractor was rejected by t2, item 3 has no human distractor
    assert {s: (e["accepted"], e["total"]) for s, e in data["filtered"].items()} == {"human": (2, 2), "sft": (1, 2)}


def test_reasons_are_counted(cli, engine):
    with Session(engine) as session:
        ids = add_items(session, [[("a", "sft"), ("b", "sft"), ("c", "sft")]])
        rater = get_or_create_rater(session, name="t", kind="human")
        save_judgements(session, rater_id=rater.id, item_id=1, judgements=[
            Judgement(ids[0][0], False, reason="identical"), Judgement(ids[0][1], False, reason="identical"),
            Judgement(ids[0][2], False, reason="unreasonable")])
        session.commit()
    data = json.loads(cli("report", "--format", "json").stdout)
    assert data["reasons"] == {"identical": 2, "unreasonable": 1}


def test_plot_is_a_png_of_the_expected_size(cli, published, tmp_path):
    out = tmp_path / "report.png"
    cli("report", "--format", "csv", "--plot", out)
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1000, 400)


def test_markdown_and_csv_formats(cli, published):
    markdown = cli("report", "--format", "markdown").stdout
    assert "| sources |  | dpo | 119 | 248 | 48.0% |" in markdown
    csv_text = cli("report", "--format", "csv").stdout.splitlines()
    assert csv_text[0].startswith("section,group,source,accepted,total,rate")
    assert any(line.startswith("sources,,sft,121,284,") for line in csv_text)


def test_nothing_rated_is_said_with_exit_0(tmp_path):
    from typer.testing import CliRunner

    from rater.cli import app
    fresh = CliRunner().invoke(app, ["--db", str(tmp_path / "fresh.db"), "report"])
    assert fresh.exit_code == 0 and "Nothing is rated yet in preference rating" in fresh.output


def test_a_filter_that_matches_nothing_is_an_error_naming_it(cli, small):
    cli("demo", "--baseline", "1")  # a source nobody rated
    unknown = cli("report", "--source", "nosuch", ok=False)
    assert unknown.exit_code == 2 and "sources here: baseline, dpo, human, sft" in unknown.stderr
    assert "raters here: gpt, t1, t2" in cli("report", "--rater", "nobody", ok=False).stderr
    nothing = cli("report", "--source", "baseline", "--rater", "t1", ok=False)
    assert nothing.exit_code == 2 and "No ratings in preference rating match --source baseline and --rater t1" \
        in " ".join(nothing.stderr.replace("│", " ").split())


def test_wilson_interval_matches_a_known_value():
    from rater.evaluation.agreement import wilson
    low, high = wilson(121, 284)  # the published SFT acceptance
    assert round(low, 3) == 0.370 and round(high, 3) == 0.484
    assert wilson(0, 0) == (0.0, 0.0) and wilson(10, 10)[1] == pytest.approx(1.0)


def test_agreement_says_when_the_study_gives_each_item_to_one_teacher(cli, engine):
    items = [[("h1", "human"), ("s1", "sft")], [("h2", "human"), ("s2", "sft")]]
    with Session(engine) as session:
        ids = add_items(session, items)
        rate(session, "t1", "human", ids[:1], [[True, False]])
        rate(session, "t2", "human", [ids[1]], [[True, True]])  # the second item, not shared
        session.commit()
    assert "this study has overlap 1" not in cli("report", "--format", "json").stdout  # no overlap set: the old note
    cli("study", "overlap", "1")
    note = json.loads(cli("report", "--format", "json").stdout)["agreement"]["note"]
    assert note.startswith("agreement between teachers needs two teachers on the same items; this study has overlap 1")
    assert "this study has overlap 1" in " ".join(cli("report").output.split())
