"""Blind evaluation sets: the draw (at most 2 per source, shuffled, items lacking candidates left out) and listing."""

import json
from collections import Counter

from sqlalchemy import select
from sqlmodel import Session

from rater.store.tables import Distractor, EvalSet, EvalSlot


def make_items(cli, tmp_path):
    rows = []
    for n in range(10):
        rows.append({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}", "source": "human",
                     "distractors": [f"h{n}a", f"h{n}b", f"h{n}c"]})
        if n < 8:  # items 8 and 9 have only human candidates: at most 2 of them fit
            rows.append({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}", "source": "sft",
                         "distractors": [f"s{n}a", f"s{n}b"]})
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r | {"split": "test"}) + "\n" for r in rows))
    cli("import", path)


def test_build_draws_at_most_two_per_source_and_counts_left_out(cli, engine, tmp_path):
    make_items(cli, tmp_path)
    result = cli("eval", "build", "blind", "--sources", "human,sft", "--items", "100", "--seed", "3")
    assert "8 items, 32 slots; 2 items left out" in " ".join(result.output.split())
    with Session(engine) as session:
        rows = session.execute(select(EvalSlot.position, Distractor.source).join(
            Distractor, Distractor.id == EvalSlot.distractor_id)).all()
    per_item = {}
    for position, source in rows:
        per_item.setdefault(position, Counter())[source] += 1
    assert all(sum(c.values()) == 4 and max(c.values()) <= 2 for c in per_item.values())
    again = cli("eval", "build", "blind", "--sources", "human,sft", ok=False)
    assert again.exit_code == 2 and "exists already" in again.stderr


def test_same_seed_same_draw_and_another_seed_another(cli, engine, tmp_path):
    make_items(cli, tmp_path)
    cli("eval", "build", "a", "--sources", "human,sft", "--seed", "5")
    cli("eval", "build", "b", "--sources", "human,sft", "--seed", "5")
    with Session(engine) as session:
        def slots(name):
            set_id = session.execute(select(EvalSet.id).where(EvalSet.name == name)).scalar_one()
            return session.execute(select(EvalSlot.position, EvalSlot.slot, EvalSlot.distractor_id)
                                   .where(EvalSlot.eval_set_id == set_id).order_by(EvalSlot.id)).all()
        assert slots("a") == slots("b")
    cli("eval", "build", "c", "--sources", "human,sft", "--seed", "6")
    with Session(engine) as session:
        assert slots("c") != slots("a")  # the seed decides the draw


async def test_list_shows_each_raters_progress(cli, engine, tmp_path):
    from rater.raters.runner import Queue
    from tests.conftest import build_app, press

    make_items(cli, tmp_path)
    cli("eval", "build", "blind", "--sources", "human,sft")
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="blind"), blind=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "1", "space", "2", "space", "3", "space")
    assert "blind: 8 items; lisa 3/8" in cli("eval", "list").output
    result = cli("eval", "rate", "nope", "--as", "x", ok=False)
    assert result.exit_code == 2 and "blind" in result.stderr


async def test_shuffle_per_rater_gives_each_teacher_an_order_of_their_own(cli, engine, tmp_path):
    import zlib

    from rater.raters.runner import Queue
    from tests.conftest import build_app, press

    make_items(cli, tmp_path)
    cli("eval", "build", "blind", "--sources", "human,sft")
    firsts = {}
    for name in ("lisa", "olle"):
        seed = zlib.crc32(name.encode())  # what `rater eval rate --shuffle-per-rater` passes
        app = build_app(engine, rater_name=name, queue=Queue(eval_set="blind"), blind=True, shuffle_seed=seed)
        async with app.run_test(size=(100, 30)) as pilot:
            order = []
            for _ in range(8):
                await press(pilot)
                order.append(str(app.query_one("#question").render()))
                await press(pilot, "space")
        firsts[name] = order
    assert sorted(firsts["lisa"]) == sorted(firsts["olle"]) and firsts["lisa"] != firsts["olle"]
    assert firsts["lisa"] != [f"F {n}?" for n in range(8)]  # not the set's own order either
