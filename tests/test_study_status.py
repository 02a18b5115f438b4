"""`rater study status`: the organizer's view of a study, from real screen runs with a controlled clock."""

import asyncio
import json
import random
import statistics

from sqlalchemy import select
from sqlmodel import Session

from rater.evaluation.agreement import cohen_kappa
from rater.evaluation.status import study_status
from rater.store.items import ItemFilter
from tests.conftest import FakeClock, build_app, press, settle

SIZE = (100, 30)


async def rate(engine, name: str, keys_per_item: list[str], seconds: float) -> None:
    """A teacher rates len(keys_per_item) items on the real screen, each on screen `seconds` (the clock is moved)."""
    clock = FakeClock()
    app = build_app(engine, rater_name=name, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for keys in keys_per_item:
            clock.advance(seconds - 1)  # press() moves the clock 1 s before each key
            await press(pilot, *keys, "space")


async def test_status_counts_pace_agreement_and_holds_from_real_screen_runs(cli, engine):
    cli("demo")
    result = cli("split", "--resplit", "--max-context-tokens", "70", "--test-fraction", "0.3")
    excluded = int(result.output.split("excluded ")[1].split()[0])
    kept = 12 - excluded
    cli("study", "overlap", "2")
    await rate(engine, "anna", [["1"]] * 4, seconds=20)
    await rate(engine, "bo", [["1"]] * 4, seconds=30)
    await rate(engine, "cleo", [[]] * 3, seconds=2)  # clicks through, rejecting everything
    with Session(engine) as session:
        status = study_status(session)
    assert status.items == kept and status.overlap == 2  # excluded items never counted
    assert status.done + status.lacking == kept and status.done >= 3
    assert sum(s["items"] for s in status.by_split.values()) == kept and "excluded" not in status.by_split
    anna, bo, cleo = (status.teachers[n] for n in ("anna", "bo", "cleo"))
    assert (anna.items, bo.items, cleo.items) == (4, 4, 3)
    assert anna.median_seconds == 21 and bo.median_seconds == 31  # the time on item each save stored
    assert cleo.fast and not anna.fast and not bo.fast and cleo.accepted_rate == 0
    assert anna.kappa_n > 0 and cleo.kappa_n > 0
    assert status.held == []  # every screen closed: nothing held

    data = json.loads(cli("study", "status", "--format", "json").output)
    assert set(data) >= {"items", "done", "lacking", "beyond_k", "by_split", "by_source", "teachers", "held"}
    assert set(data["teachers"]["anna"]) >= {"items", "median_seconds", "accepted_rate", "kappa", "kappa_n",
                                            "flagged", "last_active"}
    table = " ".join(cli("study", "status").output.split())
    assert "(fast)" in table and "marked fast: median seconds per item below 25%" in table


async def test_an_item_held_now_is_listed_with_its_teacher(cli, engine):
    cli("demo")
    cli("study", "overlap", "1")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        held = app.shown.item.id
        data = json.loads((await asyncio.to_thread(cli, "study", "status", "--format", "json")).output)
        assert [(h["teacher"], h["item"]) for h in data["held"]] == [("anna", held)]


def test_status_with_overlap_1_says_kappa_needs_two_teachers_and_bad_input_is_refused(cli, engine):
    cli("demo")
    cli("study", "overlap", "1")
    assert "No teacher has rated anything yet" in cli("study", "status").output
    for args, message in ((("--set", "nosuch"), "No evaluation set named"), (("--split", "dev"), "No items in split"),
                          (("--format", "xml"), "no format")):
        result = cli("study", "status", *args, ok=False)
        assert result.exit_code == 2 and message in " ".join(result.stderr.replace("│", " ").split()), args


async def test_a_flag_from_the_screen_reaches_the_organizer_and_a_majority_keeps_the_item_out_of_exports(cli, engine,
                                                                                                        tmp_path):
    await asyncio.to_thread(cli, "demo", "--baseline", "2")  # the baseline generator runs an event loop of its own
    cli("split", "--resplit", "--test-fraction", "0")
    for name in ("anna", "bo"):
        app = build_app(engine, rater_name=name)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await settle(pilot)
            flagged_item = app.shown.item.id
            await press(pilot, "f")
            for key in "fel svar":
                await pilot.press("space" if key == " " else key)
            await pilot.press("enter")
            await settle(pilot)
            await press(pilot, "1", "space", "2", "space")  # the flagged item, and one more
    status = json.loads(cli("study", "status", "--format", "json").output)
    assert [(f["item"], f["teacher"], f["note"]) for f in status["flags"]] == [
        (flagged_item, "bo", "fel svar"), (flagged_item, "anna", "fel svar")]
    assert status["teachers"]["anna"]["flagged"] == 1
    assert all(f["left_out_of_exports"] for f in status["flags"])  # both of its teachers flagged it
    out = tmp_path / "pref.json"
    result = cli("export", "kto", "-o", tmp_path / "kto.jsonl")
    assert "1 item flagged as broken by most of their teachers" in " ".join(result.output.split())
    with_flagged = cli("export", "kto", "-o", tmp_path / "all.jsonl", "--include-flagged")
    kept = len((tmp_path / "all.jsonl").read_text().splitlines())
    assert len((tmp_path / "kto.jsonl").read_text().splitlines()) < kept and "flagged" not in with_flagged.output
    assert not out.exists()


def test_one_flag_among_three_teachers_is_no_majority(cli, engine):
    from rater.core.domain import Judgement
    from rater.store.engine import session_scope
    from rater.store.flags import flag_item, flagged_by_majority
    from rater.store.ratings import get_or_create_rater, save_judgements
    from rater.store.tables import Distractor, saved_id

    cli("demo")
    with session_scope(engine) as session:
        ids = [saved_id(get_or_create_rater(session, name=n, kind="human")) for n in ("a", "b", "c")]
        distractors = session.execute(select(Distractor).where(Distractor.item_id == 1)).scalars().all()
        for rater_id in ids:
            save_judgements(session, rater_id=rater_id, item_id=1, judgements=[Judgement(d.id, True) for d in distractors])
        flag_item(session, rater_id=ids[0], item_id=1, note="typo")
    with session_scope(engine) as session:
        assert flagged_by_majority(session) == set()
        flag_item(session, rater_id=ids[1], item_id=1, note=None)
    with session_scope(engine) as session:
        assert flagged_by_majority(session) == {1}


def direct_count(engine, *, split: str | None = None, sources: tuple[str, ...] = (), eval_set_id=None) -> dict:
    """The status figures counted by hand from every rating row, as a check of the grouped queries."""
    from rater.store.tables import Distractor, Item, RaterRecord, Rating

    with Session(engine) as session:
        items = {i: s or "none" for i, s in session.execute(select(Item.id, Item.split)).all()
                 if s != "excluded" and (split is None or s == split)}
        with_distractors = {i for i, s in session.execute(select(Distractor.item_id, Distractor.source)).all()
                            if not sources or s in sources}
        items = {i: s for i, s in items.items() if i in with_distractors}
        rows = [r for r in session.execute(
            select(Rating.item_id, Rating.distractor_id, RaterRecord.name, Rating.accepted, Rating.seconds,
                   Rating.beyond_k, Distractor.source).join(RaterRecord).join(Distractor)
            .where(RaterRecord.kind == "human", Rating.eval_set_id.is_(eval_set_id))).all()
                if r[0] in items and (not sources or r[6] in sources)]
        overlap = study_status(session).overlap or 1
    counted, labels, seconds = {}, {}, {}
    for item_id, distractor_id, name, accepted, secs, beyond_k, _ in rows:
        if not beyond_k:
            counted.setdefault(item_id, set()).add(name)
        labels.setdefault(distractor_id, {})[name] = accepted
        if secs is not None:
            seconds.setdefault(name, {})[item_id] = max(secs, seconds.get(name, {}).get(item_id, 0))
    done = {i for i, names in counted.items() if len(names) >= overlap}
    teachers = {}
    for name in {r[2] for r in rows}:
        mine = [(d[name], other) for d in labels.values() if name in d for n, other in d.items() if n != name]
        own = sorted(seconds.get(name, {}).values())
        teachers[name] = {"items": len({r[0] for r in rows if r[2] == name}), "kappa_n": len(mine),
                          "kappa": cohen_kappa([a for a, _ in mine], [b for _, b in mine]) if mine else None,
                          "median_seconds": round(statistics.median(own), 2) if own else None,
                          "accepted_rate": sum(r[3] for r in rows if r[2] == name) / sum(r[2] == name for r in rows)}
    return {"items": len(items), "done": len(done), "beyond_k": len({r[0] for r in rows if r[5]}),
            "by_split": {s: {"items": sum(v == s for v in items.values()),
                             "done": sum(items[i] == s for i in done)} for s in sorted(set(items.values()))},
            "by_source": {s: {"rated": sum(r[6] == s for r in rows),
                              "accepted_rate": sum(r[3] for r in rows if r[6] == s) / sum(r[6] == s for r in rows)}
                          for s in sorted({r[6] for r in rows})},
            "teachers": teachers}


def rounded(value):
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 9) if isinstance(value, float) else value


def test_the_grouped_counts_equal_a_count_by_hand_of_every_rating(any_db, tmp_path):
    """The status is counted by grouped queries (fast at 1,000,000 ratings: benchmarks/bench_status.py); on a
    random study with several splits, sources, teachers who share items, saves beyond K and missing seconds it gives
    the same figures as counting every rating row by hand, also for one split and one source; on SQLite and on
    PostgreSQL (its window functions and grouping included)."""
    from rater.core.domain import Judgement
    from rater.store.engine import create_store_engine
    from rater.store.ratings import get_or_create_rater, mark_beyond_k, save_judgements
    from rater.store.tables import Distractor, Item
    from tests.conftest import Cli

    cli, engine = Cli(any_db), create_store_engine(any_db)

    asyncio.run(asyncio.to_thread(cli, "demo", "--baseline", "2"))
    cli("split", "--resplit", "--max-context-tokens", "70", "--test-fraction", "0.3")
    cli("study", "overlap", "2")
    rng = random.Random(3)
    with Session(engine) as session:
        distractors = session.execute(select(Distractor.id, Distractor.item_id)).all()
        item_ids = sorted({i for _, i in distractors})
    for name in ("anna", "bo", "cleo", "dan"):
        with Session(engine) as session, session.begin():
            rater_id = get_or_create_rater(session, name=name, kind="human").id
            for item_id in rng.sample(item_ids, 8):
                judgements = [Judgement(d, rng.random() < 0.5, seconds=None if rng.random() < 0.2 else rng.uniform(1, 60))
                              for d, i in distractors if i == item_id and rng.random() < 0.8]
                if judgements:
                    save_judgements(session, rater_id=rater_id, item_id=item_id, judgements=judgements)
                    if rng.random() < 0.15:
                        mark_beyond_k(session, rater_id=rater_id, item_id=item_id, eval_set_id=None)
    with Session(engine) as session:
        source = session.execute(select(Distractor.source).where(Distractor.source != "human")).scalars().first()
        assert session.execute(select(Item.split).where(Item.split == "excluded")).first() is not None
    for split, sources in ((None, ()), ("train", ()), (None, (source,))):
        expected = direct_count(engine, split=split, sources=sources)
        with Session(engine) as session:
            got = study_status(session, where=ItemFilter(sources=sources, split=split)).as_json()
        assert {k: got[k] for k in ("items", "done", "beyond_k", "by_split")} == {
            k: expected[k] for k in ("items", "done", "beyond_k", "by_split")}, (split, sources)
        assert rounded(got["by_source"]) == rounded(expected["by_source"])
        assert rounded({n: {k: t[k] for k in expected["teachers"][n]} for n, t in got["teachers"].items()}) == rounded(
            expected["teachers"]), (split, sources)
        assert expected["teachers"] and any(t["kappa_n"] for t in expected["teachers"].values())
    engine.dispose()


def test_every_write_keeps_the_tallies_equal_to_a_count_from_scratch(any_db):
    """The status reads tallies that every save keeps (rater.store.tally). After saves through the writer (a
    teacher's first save, one beyond K, an evaluation set's), re-ratings that change labels, a direct mark beyond K
    and a judge's ratings, the tallies equal both a count from scratch and migration 0012's backfill SQL; the judge
    is in none; and the status equals a count by hand of every rating. On SQLite and PostgreSQL."""
    import importlib.util
    from pathlib import Path

    from sqlalchemy import delete, text

    from rater.core.domain import Judgement
    from rater.store.engine import create_store_engine
    from rater.store.ratings import eval_set_id_of, get_or_create_rater, mark_beyond_k, save_judgements
    from rater.store.tables import Distractor, EvalSlot, SourceTally, TeacherTally
    from rater.store.writer import Ratings, StoreWriter
    from tests.conftest import Cli, tallies, tallies_recounted

    cli, engine = Cli(any_db), create_store_engine(any_db)
    asyncio.run(asyncio.to_thread(cli, "demo", "--baseline", "2"))
    cli("study", "overlap", "2")
    cli("eval", "build", "blind", "--sources", "human,baseline", "--items", "6", "--seed", "3")
    rng = random.Random(5)
    with Session(engine) as session, session.begin():
        distractors = session.execute(select(Distractor.id, Distractor.item_id)).all()
        item_ids = sorted({i for _, i in distractors})[:10]
        teachers = [get_or_create_rater(session, name=n, kind="human").id for n in ("anna", "bo", "cleo")]
        judge = get_or_create_rater(session, name="judge", kind="llm").id
        set_id = eval_set_id_of(session, "blind")
        slots = session.execute(select(EvalSlot.item_id, EvalSlot.distractor_id).where(EvalSlot.eval_set_id == set_id)).all()

    def judgements(item_id, pairs=distractors):
        return [Judgement(d, rng.random() < 0.5, seconds=rng.choice([None, rng.uniform(1, 60)]))
                for d, i in pairs if i == item_id]

    async def through_the_writer(raters, eval_set=True):
        writer = StoreWriter(engine)
        saves = [writer.submit(Ratings(t, None, i, judgements(i), release_lease=True))
                 for t in raters for i in item_ids[:6]]
        if eval_set:
            saves += [writer.submit(Ratings(t, set_id, i, judgements(i, slots), release_lease=True))
                      for t in raters for i in sorted({i for i, _ in slots})]
            saves.append(writer.submit(Ratings(judge, None, item_ids[0], judgements(item_ids[0]))))
        results = await asyncio.gather(*saves)
        await writer.close()
        return results

    asyncio.run(through_the_writer(teachers[:2]))
    results = asyncio.run(through_the_writer(teachers[2:], eval_set=False))  # after K = 2 others: beyond K
    assert any(r.beyond_k for r in results if r is not None)
    with Session(engine) as session, session.begin():
        for item_id in item_ids[4:]:  # re-rated with other labels, and new items
            save_judgements(session, rater_id=teachers[0], item_id=item_id, judgements=judgements(item_id))
        save_judgements(session, rater_id=judge, item_id=item_ids[1], judgements=judgements(item_ids[1]))
        mark_beyond_k(session, rater_id=teachers[1], item_id=item_ids[5], eval_set_id=None)
    with Session(engine) as session:
        kept = tallies(session)
        assert kept[0] and kept[1] and judge not in {row[2] for row in kept[0]}
        assert {row[0] for row in kept[0]} == {0, set_id}
        assert any(row[6] for row in kept[0]) and any(row[7] or row[10] for row in kept[0])  # beyond K; pairs
        assert tallies_recounted(session) == kept
        migration = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0012_tallies.py"
        spec = importlib.util.spec_from_file_location("tallies_0012", migration)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        session.execute(delete(TeacherTally))
        session.execute(delete(SourceTally))
        session.execute(text(module.TEACHER_TALLY))
        session.execute(text(module.SOURCE_TALLY))
        assert tallies(session) == kept
        session.rollback()
    expected = direct_count(engine)
    with Session(engine) as session:
        got = study_status(session).as_json()
    assert {k: got[k] for k in ("items", "done", "beyond_k", "by_split")} == {
        k: expected[k] for k in ("items", "done", "beyond_k", "by_split")}
    assert rounded(got["by_source"]) == rounded(expected["by_source"])
    assert rounded({n: {k: t[k] for k in expected["teachers"][n]} for n, t in got["teachers"].items()}) == rounded(
        expected["teachers"])
    engine.dispose()
