"""Work shared out with an overlap: each item goes to teachers until K of them have rated it, a teacher never gets
an item twice, an open item is held by a lease that expires. Every test runs on SQLite and on the test
PostgreSQL server."""

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, func, select, update
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.raters.base import Rater
from rater.raters.runner import Queue, run_rater
from rater.store.engine import create_store_engine, session_scope
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.study import Study, recount_need
from rater.store.tables import NEED_UNKNOWN, Distractor, Item, Lease, RaterRecord, Rating, StudySetting, utcnow
from rater.tui.screens import SummaryScreen
from tests.conftest import Cli, build_app, import_items, press, run_driver, tallies, tallies_recounted


class Teacher(Rater):
    """A teacher who accepts the first distractor of every item, or skips the items listed in `skips` once."""

    kind = "human"
    default_name = "teacher"
    interactive = True

    def __init__(self, name: str, skips: tuple[int, ...] = ()) -> None:
        super().__init__(name)
        self.seen: list[int] = []
        self.skips = set(skips)

    async def rate(self, item):
        self.seen.append(item.id)
        if item.id in self.skips:
            self.skips.discard(item.id)
            return []
        return [Judgement(d.id, n == 0) for n, d in enumerate(item.distractors)]


def set_overlap(engine, overlap: int | None, eval_set: str | None = None) -> None:
    """The study's K (rater study overlap K), which every teacher's run follows."""
    with session_scope(engine) as session:
        Study.named(session, eval_set).set_overlap(session, overlap)


def rate_as(engine, name: str, overlap: int | None, **queue) -> Teacher:
    teacher = Teacher(name, queue.pop("skips", ()))
    set_overlap(engine, overlap, queue.get("eval_set"))
    asyncio.run(run_rater(teacher, engine, Queue(**queue)))
    return teacher


def teachers_per_item(engine, eval_set_id: int | None = None) -> Counter:
    """{item id: distinct teachers with ratings of it} in one scope."""
    scope = Rating.eval_set_id.is_(None) if eval_set_id is None else Rating.eval_set_id == eval_set_id
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, func.count(func.distinct(Rating.rater_id)))
                               .where(scope).group_by(Rating.item_id)).all()
    return Counter(dict(rows))


@pytest.fixture
def study(any_db, tmp_path):
    cli = Cli(any_db)
    engine = create_store_engine(any_db)
    yield cli, engine
    engine.dispose()


def test_each_item_goes_to_k_teachers_and_never_twice_to_one(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 10)
    first, second, third = (rate_as(engine, name, 2) for name in ("anna", "bo", "cem"))
    assert len(first.seen) == len(set(first.seen)) == 10 and len(second.seen) == len(set(second.seen)) == 10
    assert third.seen == []
    assert set(teachers_per_item(engine).values()) == {2}


def test_without_an_overlap_everyone_rates_everything(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 5)
    assert [len(rate_as(engine, name, None).seen) for name in ("anna", "bo", "cem")] == [5, 5, 5]


def test_claims_at_the_same_moment_keep_k_exact(study, tmp_path):
    """Eight teachers in eight threads (each with its own connections) claim and rate 40 items with overlap 2."""
    cli, engine = study
    import_items(cli, tmp_path, 40, per_item=2)
    set_overlap(engine, 2)
    with session_scope(engine) as session:
        ids = [get_or_create_rater(session, name=f"t{n}", kind="human").id for n in range(8)]
    barrier = threading.Barrier(len(ids))
    errors: list[BaseException] = []
    claimed: Counter = Counter()

    def teacher(rater_id: int) -> None:
        try:
            barrier.wait()
            while True:
                with session_scope(engine) as session:
                    item_id = Study().claim(session, rater_id=rater_id)
                if item_id is None:
                    return
                claimed[rater_id, item_id] += 1
                with session_scope(engine) as session:
                    distractors = session.execute(select(Distractor.id).where(Distractor.item_id == item_id)).scalars()
                    save_judgements(session, rater_id=rater_id, item_id=item_id,
                                    judgements=[Judgement(d, True) for d in distractors])
                    Study().release(session, rater_id=rater_id, item_ids=[item_id])
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=teacher, args=(rater_id,)) for rater_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert max(claimed.values()) == 1  # nobody got an item twice
    per_item = teachers_per_item(engine)
    assert len(per_item) == 40 and set(per_item.values()) == {2}
    with Session(engine) as session:  # two saves of one item at once: the second's tally counts the first's ratings
        assert tallies(session) == tallies_recounted(session)


def test_an_open_item_is_held_until_its_lease_expires(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 2)
    set_overlap(engine, 1)
    with session_scope(engine) as session:
        anna, bo = (get_or_create_rater(session, name=n, kind="human").id for n in ("anna", "bo"))
        first = Study().claim(session, rater_id=anna)
    with session_scope(engine) as session:
        held = Study().claim(session, rater_id=bo)
        Study().release(session, rater_id=bo, item_ids=[held])
    assert held != first  # anna's open item is reserved for her
    with session_scope(engine) as session:  # anna walks away: her lease runs out
        session.execute(update(Lease).where(Lease.rater_id == anna).values(expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(engine) as session:
        assert Study().claim(session, rater_id=bo) == first


def test_a_claim_searches_behind_the_last_item_first_and_then_from_the_start(study, tmp_path):
    """The runner passes the item it claimed last, so a claim does not read every finished item again; an item
    released before that point still comes, once nothing is left behind it."""
    cli, engine = study
    import_items(cli, tmp_path, 4)
    set_overlap(engine, 1)
    with session_scope(engine) as session:
        anna, bo = (get_or_create_rater(session, name=n, kind="human").id for n in ("anna", "bo"))
        items = sorted(session.execute(select(func.distinct(Distractor.item_id))).scalars())

    def claim(rater_id: int, after: int | None) -> int | None:
        with session_scope(engine) as session:
            return Study().claim(session, rater_id=rater_id, after=after)

    assert claim(anna, None) == items[0]  # anna holds the first item
    assert claim(bo, None) == items[1]
    with session_scope(engine) as session:  # then walks away from it
        Study().release(session, rater_id=anna, item_ids=[items[0]])
    assert claim(bo, items[1]) == items[2]  # behind bo's last item first, though the first item is free again
    assert claim(bo, items[2]) == items[3]
    assert claim(bo, items[3]) == items[0]  # nothing left behind it: from the start


def test_a_skipped_item_goes_back_to_the_others_and_comes_again_later(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 3)
    with Session(engine) as session:
        first = session.execute(select(func.min(Distractor.item_id))).scalar()
    anna = rate_as(engine, "anna", 1, skips=(first,))
    # every item once, from where the teacher's first claim looked (spread by teacher), then the skipped one again
    assert sorted(anna.seen[:3]) == [first, first + 1, first + 2] and anna.seen[3] == first
    assert set(teachers_per_item(engine).values()) == {1}
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Lease)).scalar() == 0  # nothing held after the run


def test_a_blind_evaluation_shares_out_its_own_judgements(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 6, split="test")
    cli("eval", "build", "blind", "--sources", "human", "--items", "6", "--per-item", "2")
    rate_as(engine, "anna", None)  # preference ratings count nothing towards the evaluation set
    rate_as(engine, "anna", 1, eval_set="blind")
    assert rate_as(engine, "bo", 1, eval_set="blind").seen == []
    with Session(engine) as session:
        from rater.store.ratings import eval_set_id_of
        eval_set_id = eval_set_id_of(session, "blind")
        assert Study(eval_set_id).progress(session).lacking == 0
    assert set(teachers_per_item(engine, eval_set_id).values()) == {1}


def test_the_overlap_is_stored_with_the_study_and_shown_in_progress(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 4, split="test")
    assert "no overlap" in cli("study", "overlap").output
    cli("study", "overlap", "2")
    refused = cli("rate", "--overlap", "3", "--as", "anna", ok=False)
    assert refused.exit_code == 2 and "overlap 2" in refused.stderr
    rate_as(engine, "anna", 2)
    stats = " ".join(cli("db", "stats").output.split())  # Rich wraps at 80 columns
    assert "overlap 2: 4 of 4 items still lack 2 teachers' ratings" in stats and "anna" in stats
    cli("eval", "build", "blind", "--sources", "human", "--items", "4", "--per-item", "2")
    cli("study", "overlap", "1", "--set", "blind")
    rate_as(engine, "bo", 1, eval_set="blind")
    listed = " ".join(cli("eval", "list").output.split())
    assert "bo 4/4" in listed and "overlap 1: every item has 1 teacher's ratings" in listed
    assert "anna: 4 items rated" in cli("study", "overlap").output
    cli("study", "overlap", "--off")
    assert "no overlap" in cli("study", "overlap").output


def test_k_is_read_once_in_a_transaction_and_again_in_the_next(study, tmp_path):
    cli, engine = study
    import_items(cli, tmp_path, 2, split="test")
    reads = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: reads.append(1) if "study_setting" in statement else None)
    with Session(engine) as session:  # one long-lived session, as a server's might be
        assert Study().overlap(session) is None
        Study().overlap(session)
        assert len(reads) == 1  # the save's two reads of K are one round trip
        Study().set_overlap(session, 2)
        assert Study().overlap(session) == 2  # the transaction's own change is seen
        session.commit()
        set_overlap(engine, 3)  # another process (`rater study overlap 3`)
        assert Study().overlap(session) == 3  # the next transaction reads K again
        session.rollback()
        set_overlap(engine, None)
        assert Study().overlap(session) is None


def test_an_overlap_below_one_is_refused_with_nothing_written(study):
    cli, engine = study
    for command in (("rate", "--overlap", "0", "--as", "anna"), ("study", "overlap", "0")):
        result = cli(*command, ok=False)
        assert result.exit_code == 2 and "1 or more" in result.stderr, result.output
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(RaterRecord)).scalar() == 0
        assert session.execute(select(func.count()).select_from(StudySetting)).scalar() == 0


async def shows(pilot, text: str, timeout: float = 10.0) -> None:
    """Wait until the status line holds `text` (the study's count is refreshed in a worker after each save)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in (status := str(pilot.app.query_one("#status").render())):
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("count_delay", [0.0, 0.5], ids=["count-at-once", "count-after-the-next-item"])
async def test_the_status_line_shows_the_own_count_and_what_the_study_needs(study, tmp_path, monkeypatch,
                                                                            count_delay):
    """With a delay, the study's count arrives after the next item is shown (as on a busy machine): it is shown
    then."""
    lacking = Study.lacking

    def slow_count(self, session):
        if threading.current_thread() is not threading.main_thread():  # the screen's count, after a save
            time.sleep(count_delay)
        return lacking(self, session)

    monkeypatch.setattr(Study, "lacking", slow_count)
    cli, engine = study
    set_overlap(engine, 2)
    import_items(cli, tmp_path, 3)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot)
        await shows(pilot, "you rated 0; 3 items still need ratings")
        await press(pilot, "1", "space")
        await shows(pilot, "you rated 1; 3 items still need ratings")
    await asyncio.to_thread(rate_as, engine, "bo", 2)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "1", "space")
        await shows(pilot, "you rated 2; 1 item still needs ratings")


def test_two_teachers_with_overlap_one_on_100_items_rate_each_item_once(study, tmp_path):
    """Two rating screens in two processes, started together, each pressing 1 and space until nothing is left."""
    cli, engine = study
    import_items(cli, tmp_path, 100, per_item=2)
    screens = [run_driver(cli.db_path, name, options=("--overlap", "1", "--until-done")) for name in ("anna", "bo")]
    rated = []
    for screen in screens:
        out, err = screen.communicate(timeout=300)
        assert screen.returncode == 0, err
        rated.append(int(out.split("RATED")[-1]))
    per_item = teachers_per_item(engine)
    assert len(per_item) == 100 and set(per_item.values()) == {1}
    assert sum(rated) == 100 and min(rated) > 0  # both did share the work


def needs(engine) -> dict[int, int]:
    with Session(engine) as session:
        return dict(session.execute(select(Item.id, Item.need).order_by(Item.id)).all())


def test_each_item_keeps_a_count_of_the_teachers_it_still_needs_and_a_claim_reads_only_those(study, tmp_path):
    """The claim finds free items through `Item.need` and its partial index, so its cost stays flat as the study
    finishes items (benchmarks/bench_claim.py): the count follows saves, beyond-K saves, imported ratings and a
    change of K, and is never below the truth."""
    cli, engine = study
    import_items(cli, tmp_path, 4)
    assert set(needs(engine).values()) == {NEED_UNKNOWN}  # no K: unknown, every item is looked at
    set_overlap(engine, 2)
    assert set(needs(engine).values()) == {2}
    rate_as(engine, "anna", 2)  # through the runner and the writer
    assert set(needs(engine).values()) == {1}
    rate_as(engine, "bo", 2)
    assert set(needs(engine).values()) == {0}
    set_overlap(engine, 3)
    assert set(needs(engine).values()) == {1}
    first = min(needs(engine))
    with session_scope(engine) as session:  # a save beyond K is not one of the K
        update_rating = update(Rating).where(Rating.item_id == first, Rating.rater_id == get_or_create_rater(
            session, name="bo", kind="human").id).values(beyond_k=True)
        session.execute(update_rating)
        recount_need(session, [first])
    assert needs(engine)[first] == 2
    set_overlap(engine, None)
    assert set(needs(engine).values()) == {NEED_UNKNOWN}
    set_overlap(engine, 2)
    assert needs(engine)[first] == 1 and rate_as(engine, "cem", 2).seen == [first]
    assert set(needs(engine).values()) == {0}
    if engine.dialect.name == "sqlite":  # the claim's search goes through the partial index
        with Session(engine) as session:
            rater_id = get_or_create_rater(session, name="dora", kind="human").id
            plans: list[str] = []
            listen = lambda conn, cursor, statement, *rest: plans.append(statement)  # noqa: E731
            event.listen(engine, "before_cursor_execute", listen)
            try:
                Study().claim(session, rater_id=rater_id)
            finally:
                event.remove(engine, "before_cursor_execute", listen)
            search = next(s for s in plans if "need >" in s)
            rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + search,
                                                        tuple([rater_id] * search.count("?"))).all()
            assert any("ix_item_needed" in row[-1] for row in rows), rows


def test_a_k_set_while_a_teachers_run_is_open_marks_saves_beyond_it(study, tmp_path):
    """A run that began without K hands out items from its own list; once `rater study overlap` sets K, a save of
    an item that K other teachers have rated already is marked beyond K (not counted as one of the K)."""
    cli, engine = study
    import_items(cli, tmp_path, 3)
    rate_as(engine, "anna", None)  # anna rates everything, no K yet

    class Late(Teacher):
        async def rate(self, item):
            if not self.seen:
                await asyncio.to_thread(set_overlap, engine, 1)  # K arrives while bo's run is open
            return await super().rate(item)

    bo = Late("bo")
    asyncio.run(run_rater(bo, engine, Queue()))
    assert len(bo.seen) == 3
    with Session(engine) as session:
        flags = session.execute(select(Rating.beyond_k).join(RaterRecord).where(RaterRecord.name == "bo")).scalars().all()
    assert flags and all(flags)


def _hold_saves_until(monkeypatch, engine, rater_name: str, seen_ahead: list, fail_first: bool = False) -> None:
    """Make the run's writer wait, before it commits a save, until a claim of this teacher's on another item is in
    the database (at most 5 s); `seen_ahead` gets, per save, the item ids held then besides the saved one. With
    `fail_first`, the first save then fails as a database error would."""
    from sqlalchemy.exc import OperationalError

    from rater.store import writer as writer_module
    from rater.store.writer import Ratings

    commit = writer_module.StoreWriter._commit
    failed = []

    def held_besides(item_id: int) -> tuple[set[int], bool]:
        """Items this teacher holds besides `item_id`, and whether any other item is left for them to rate."""
        with Session(engine) as session:
            held = session.execute(select(Lease.item_id).join(RaterRecord, RaterRecord.id == Lease.rater_id)
                                   .where(RaterRecord.name == rater_name)).scalars().all()
            rated = select(Rating.item_id).join(RaterRecord).where(RaterRecord.name == rater_name)
            left = session.execute(select(func.count()).select_from(Item)
                                   .where(Item.id != item_id, Item.id.not_in(rated))).scalar()
        return set(held) - {item_id}, bool(left)

    def slow_commit(self, works):
        saves = [w for w in works if isinstance(w, Ratings)]
        if saves:
            deadline = time.monotonic() + 5
            while True:
                others, left = held_besides(saves[0].item_id)
                if others or not left or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            seen_ahead.append(others)
            if fail_first and not failed:
                failed.append(saves[0].item_id)
                raise OperationalError("INSERT", {}, Exception("the database went away"))
        return commit(self, works)

    monkeypatch.setattr(writer_module.StoreWriter, "_commit", slow_commit)


@pytest.mark.parametrize("uncertain", [False, True], ids=["queue-order", "uncertain-order"])
def test_the_next_item_is_claimed_while_the_save_is_under_way(study, tmp_path, monkeypatch, uncertain):
    """A teacher waits for the longer of the save and the next claim, not for both: the claim of the next item runs
    beside the save. It never takes the item being saved again (uncertainty order would, as that item is the most
    uncertain one still short of K), and K stays exact."""
    cli, engine = study
    import_items(cli, tmp_path, 4)
    with Session(engine) as session:
        ids = list(session.execute(select(Item.id).order_by(Item.id)).scalars())
    if uncertain:
        with session_scope(engine) as session:
            for n, item_id in enumerate(ids):
                session.execute(update(Item).where(Item.id == item_id).values(uncertainty=1.0 - n / 10))
    ahead: list[set[int]] = []
    _hold_saves_until(monkeypatch, engine, "anna", ahead)
    anna = rate_as(engine, "anna", 2, uncertain=uncertain)
    assert sorted(anna.seen) == sorted(ids)  # each item once: never the item being saved again
    if uncertain:
        assert anna.seen == ids  # still the most uncertain first
    # while each save but the last waited, the next item was already held (the last: nothing was left to claim)
    assert [len(others) for others in ahead] == [1, 1, 1, 0]
    assert [next(iter(others)) for others in ahead[:3]] == anna.seen[1:]
    assert set(teachers_per_item(engine).values()) == {1}
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Lease)).scalar() == 0


def test_a_failed_save_gives_back_the_item_claimed_beside_it_and_comes_again_first(study, tmp_path, monkeypatch):
    """When the save beside which the next item was claimed fails, the failed item is shown again first (with the
    teacher's answer kept by the screen), and the item claimed ahead goes back to the other teachers at once rather
    than being held unseen while the teacher answers again."""
    cli, engine = study
    import_items(cli, tmp_path, 3)
    with Session(engine) as session:
        ids = list(session.execute(select(Item.id).order_by(Item.id)).scalars())

    class Retrying(Teacher):
        def __init__(self, name):
            super().__init__(name)
            self.failed: list[int] = []
            self.held_when_shown: list[set[int]] = []

        def save_failed(self, item, error):
            self.failed.append(item.id)
            return True

        async def rate(self, item):
            def held():
                with Session(engine) as session:
                    return set(session.execute(select(Lease.item_id).join(RaterRecord, RaterRecord.id == Lease.rater_id)
                                               .where(RaterRecord.name == "anna")).scalars())
            self.held_when_shown.append(await asyncio.to_thread(held))
            return await super().rate(item)

    ahead: list[set[int]] = []
    _hold_saves_until(monkeypatch, engine, "anna", ahead, fail_first=True)
    set_overlap(engine, 2)
    anna = Retrying("anna")
    asyncio.run(run_rater(anna, engine, Queue()))
    first = anna.seen[0]
    assert anna.failed == [first]
    assert anna.seen[:2] == [first, first]  # the failed item comes again first
    assert len(ahead[0]) == 1  # its save had the next item claimed beside it ...
    assert anna.held_when_shown[1] == {first}  # ... given back when the save failed: only the failed item is held
    assert sorted(set(anna.seen)) == sorted(ids) and len(anna.seen) == 4
    assert set(teachers_per_item(engine).values()) == {1}


def test_a_save_that_fails_with_the_database_away_shows_the_item_again_without_reading_it(study, tmp_path, monkeypatch):
    """The database goes away during a save: the item is shown again as it was (the screen keeps the teacher's
    answer) without reading anything from the store, which is still away, so the run does not end; once the
    database is back the save lands and the run goes on."""
    from sqlalchemy.exc import OperationalError

    from rater.raters import agenda as agenda_module

    cli, engine = study
    import_items(cli, tmp_path, 3)
    down: list[bool] = []
    read_drafts = agenda_module.Agenda._drafts

    def drafts(self, item_id):
        if down:
            raise OperationalError("SELECT", {}, Exception("the database went away"))
        return read_drafts(self, item_id)

    monkeypatch.setattr(agenda_module.Agenda, "_drafts", drafts)

    class Retrying(Teacher):
        def save_failed(self, item, error):
            down.append(True)  # the store stays away until the item is on screen again
            return True

        async def rate(self, item):
            if item.id in self.seen:
                down.clear()  # back, while the teacher answers again
            return await super().rate(item)

    _hold_saves_until(monkeypatch, engine, "anna", [], fail_first=True)
    set_overlap(engine, 2)
    anna = Retrying("anna")
    asyncio.run(run_rater(anna, engine, Queue()))
    assert anna.seen[0] == anna.seen[1] and len(anna.seen) == 4  # shown again, then the rest
    assert set(teachers_per_item(engine).values()) == {1} and len(teachers_per_item(engine)) == 3


def item_one_held_by_bo(study, tmp_path) -> tuple:
    """K 1, two items; bo holds item 1 (a live lease). Returns the engine, anna's and bo's ids and item 1's
    distractors."""
    cli, engine = study
    import_items(cli, tmp_path, 2)
    set_overlap(engine, 1)
    with session_scope(engine) as session:
        anna, bo = (get_or_create_rater(session, name=n, kind="human").id for n in ("anna", "bo"))
        distractors = session.execute(select(Distractor.id).where(Distractor.item_id == 1)).scalars().all()
        session.add(Lease(item_id=1, rater_id=bo, expires_at=utcnow() + timedelta(minutes=2)))
    return engine, anna, bo, distractors


async def test_the_terminal_s_nothing_left_looks_again_and_shows_an_item_another_teacher_let_go(study, tmp_path,
                                                                                                monkeypatch):
    """K 1: bo holds item 1; anna rates item 2 and is told nothing is left, on a summary that looks again. Once bo's
    hold is gone, the summary gives way to item 1 by itself."""
    import rater.tui.app as screen

    monkeypatch.setattr(screen, "LOOK_AGAIN_SECONDS", 0.3)
    engine, _, bo, _ = item_one_held_by_bo(study, tmp_path)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "1", "space")
        summary = await showing(pilot, lambda: isinstance(app.screen, SummaryScreen))
        text = str(app.screen.query_one("#summary").render())
        assert "Nothing is left for you" in text and "This screen looks again every 0.3 seconds" in text
        await asyncio.sleep(1)  # it looks again and finds nothing: the same summary stays
        assert app.screen is summary and app.shown is None
        with session_scope(engine) as session:
            session.execute(delete(Lease).where(Lease.rater_id == bo))
        await showing(pilot, lambda: app.shown is not None and app.shown.item.id == 1)
        assert not isinstance(app.screen, SummaryScreen)
        await press(pilot, "1", "space")  # (the study's count follows the save: the next look says it is done)
        await showing(pilot, lambda: isinstance(app.screen, SummaryScreen)
                      and "The study is done" in str(app.screen.query_one("#summary").render()))
        assert app.look_timer is None  # nothing will come free: it stops looking
    assert set(teachers_per_item(engine)) == {1, 2}


async def showing(pilot, done, timeout: float = 10.0):
    """Wait until `done()` holds; the screen then."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert asyncio.get_running_loop().time() < deadline
        await pilot.pause(0.05)
    return pilot.app.screen


def test_a_lapsed_save_in_one_batch_with_a_holders_save_of_the_item_comes_beyond_k(study, tmp_path):
    """K 1: bo holds item 1's lease, anna's hold on it has lapsed. Their saves reach the writer in one batch: bo's
    is the one of the K, anna's comes beyond it (the check counts the teachers saving beside it); the item counts
    one teacher, not two."""
    from rater.store.writer import Ratings, Saved, _apply

    engine, anna, bo, distractors = item_one_held_by_bo(study, tmp_path)
    with session_scope(engine) as session:
        session.add(Lease(item_id=1, rater_id=anna, expires_at=utcnow() - timedelta(seconds=1)))  # lapsed
    saves = [Ratings(rater_id=r, eval_set_id=None, item_id=1, judgements=[Judgement(d, True) for d in distractors],
                     release_lease=True, expected={d: None for d in distractors}) for r in (anna, bo)]
    with session_scope(engine) as session:
        assert _apply(session, saves) == [Saved(beyond_k=True), Saved(beyond_k=False)]
    with Session(engine) as session:
        flagged = dict(session.execute(select(Rating.rater_id, Rating.beyond_k).distinct()).all())
        assert flagged == {anna: True, bo: False}
        assert session.execute(select(Item.need).where(Item.id == 1)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Lease)).scalar_one() == 0


def test_a_lapsed_save_of_an_item_another_teacher_holds_comes_beyond_k(study, tmp_path):
    """K 1: anna's hold on item 1 lapsed and bo claimed it. anna saves first: bo's coming save is the one of the K,
    so anna's is beyond it; then bo's counts. The item ends with one teacher of its K, not two."""
    from rater.store.writer import Ratings, Saved, _apply

    engine, anna, bo, distractors = item_one_held_by_bo(study, tmp_path)

    def save(rater_id: int) -> list:
        with session_scope(engine) as session:
            return _apply(session, [Ratings(rater_id=rater_id, eval_set_id=None, item_id=1, release_lease=True,
                                            judgements=[Judgement(d, True) for d in distractors])])
    assert save(anna) == [Saved(beyond_k=True)]
    assert save(bo) == [Saved(beyond_k=False)]
    with Session(engine) as session:
        assert session.execute(select(Item.need).where(Item.id == 1)).scalar_one() == 0
        assert dict(session.execute(select(Rating.rater_id, Rating.beyond_k).distinct()).all()) == {anna: True, bo: False}
