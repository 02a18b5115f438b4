"""A saved label is one the teacher saw and chose (issue 20), through Textual's pilot with real key presses; the
same cases in a real terminal are in tests/test_terminal.py."""

import asyncio
import html
import json
import re
import time
from datetime import timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.engine import session_scope
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.study import Study
from rater.store.tables import Distractor, Draft, Lease, RaterRecord, Rating, RatingHistory, utcnow
from tests.conftest import build_app, press, settle

SIZE = (100, 30)


def rows(engine, rater: str = "anna") -> list[tuple[int, int, bool, int, float | None, bool]]:
    """(item id, distractor id, accepted, shown position, seconds, beyond K) of one teacher's ratings."""
    with Session(engine) as session:
        return list(session.execute(select(Rating.item_id, Rating.distractor_id, Rating.accepted,
                                           Rating.shown_position, Rating.seconds, Rating.beyond_k)
                                    .join(RaterRecord).where(RaterRecord.name == rater)
                                    .order_by(Rating.item_id, Rating.shown_position)).all())


def screen_text(app) -> str:
    """What the screen shows, line by line joined with spaces (the screenshot's text runs, in order)."""
    lines: dict[str, list[str]] = {}
    for y, text in re.findall(r'<text [^>]*?y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()):
        lines.setdefault(y, []).append(html.unescape(text).replace("\xa0", " ").replace("▌", " "))
    return " ".join(" ".join("".join(parts) for parts in lines.values()).split())


def toasts(app) -> str:
    """The notifications on screen (a toast wraps its lines between the screen's others)."""
    return " ".join(note.message for note in app._notifications)


def items_file(tmp_path, count: int, per_item: int, **extra) -> str:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"context": f"Texten nummer {n}.", "question": f"Fråga {n}?",
                                        "answer": f"svar {n}", "distractors": [f"fel {n}.{k}" for k in range(per_item)],
                                        **extra}, ensure_ascii=False) + "\n" for n in range(count)))
    return str(path)


# 1. a double tap ---------------------------------------------------------------------------------------------

async def test_a_double_tap_saves_the_item_shown_and_never_the_next(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna", clock=time.monotonic)  # real time: the taps come 10 ms apart
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await asyncio.sleep(0.6)  # the teacher looks at item 1
        await pilot.press("1", "space", "space")
        await settle(pilot)
        await asyncio.sleep(0.05)
        await pilot.press("space", "enter")  # item 2 has just been drawn
        await settle(pilot)
        assert app.shown is not None and "biblioteket" in app.shown.item.question
    assert {item for item, *_ in rows(engine)} == {1}  # item 2 was never saved, not even as "all rejected"


# 2. a screen too small -------------------------------------------------------------------------------------

async def test_no_key_changes_anything_while_the_terminal_is_too_small(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(50, 12)) as pilot:
        await settle(pilot)
        assert "too small" in screen_text(app)
        await press(pilot, "1", "2", "space", "s", "backspace", "r", "1")
        assert rows(engine) == []
        await pilot.resize_terminal(*SIZE)
        await settle(pilot)
        assert app.shown.ticked == [False] * 4 and "ekorren" in app.shown.item.question
        await press(pilot, "1", "space")
    assert len(rows(engine)) == 4


# 3. options cut off ----------------------------------------------------------------------------------------

async def test_options_never_shown_are_never_saved_and_the_area_scrolls(cli, engine, tmp_path):
    cli("import", items_file(tmp_path, 2, 9))
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(60, 16)) as pilot:
        await settle(pilot)
        assert "more options below" in screen_text(app)
        hidden = [n for n in range(9) if n not in app.shown.seen]
        assert hidden
        await press(pilot, "space")
        assert rows(engine) == [] and "Not shown yet: options " in toasts(app)  # (several)
        await press(pilot, *["down"] * 12)
        assert app.shown.seen == set(range(9)) and "more options below" not in screen_text(app)
        await press(pilot, "space")
    assert len(rows(engine)) == 9


async def test_an_option_not_yet_in_view_cannot_be_ticked_or_given_a_reason(cli, engine, tmp_path):
    cli("import", items_file(tmp_path, 1, 9))
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(60, 16)) as pilot:
        await settle(pilot)
        hidden = min(n for n in range(9) if n not in app.shown.seen)
        await press(pilot, str(hidden + 1), "r", str(hidden + 1))
        assert not any(app.shown.ticked) and not any(app.shown.reasons)
        assert f"Option {hidden + 1} is not fully in view yet" in toasts(app)
        await press(pilot, *["down"] * 12, str(hidden + 1))
        assert app.shown.ticked[hidden]


async def test_the_smallest_screen_s_key_bar_shows_how_to_save_leave_and_get_help(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        shown = screen_text(app)
        assert all(key in shown for key in ("space Save", "esc Leave", "? Help")), shown
        await press(pilot, "1", "space")
        status = str(app.query_one("#status").render())
        assert status.endswith("you accepted 25% so far") and "anna" not in status  # the tally, not the name


async def test_the_swedish_key_bar_names_the_space_bar_in_swedish(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna", language="sv")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "mellanslag Spara" in screen_text(app)


async def test_a_key_with_no_option_says_so(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "7")
        assert "There is no option 7 here." in toasts(app) and not any(app.shown.ticked)


# 4. ticks thrown away --------------------------------------------------------------------------------------

async def test_escape_after_r_cancels_the_reason_only(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "2", "r", "escape")
        assert app.is_running and app.shown is not None and app.shown.ticked[1]
        await press(pilot, "r", "1")
        assert type(app.screen).__name__.split("_")[0] == "ReasonScreen"
        await press(pilot, "escape")  # in the reason dialog: cancels it, the item stays
        assert app.is_running and app.shown.reasons == [None] * 4


async def test_escape_keeps_the_ticks_as_a_draft_restored_on_the_next_start(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "space", "2", "4", "r", "3")
        await press(pilot, "2")  # a reason for option 3: the second, Unreasonable
        await press(pilot, "escape")
    with Session(engine) as session:
        assert session.execute(select(Draft.item_id)).scalars().all() == [2]
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "biblioteket" in again.shown.item.question
        assert again.shown.ticked == [False, True, False, True]
        assert again.shown.reasons[2] == "unreasonable"
        await press(pilot, "space")
    with Session(engine) as session:
        assert session.execute(select(Draft.item_id)).scalars().all() == []  # the save took the draft's place
    assert [(item, position, accepted) for item, _, accepted, position, _, _ in rows(engine) if item == 2] == [
        (2, 0, False), (2, 1, True), (2, 2, False), (2, 3, True)]


async def test_ctrl_q_keeps_the_ticks_as_esc_does_and_there_is_no_palette_to_quit_from(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "2", "4")
        await pilot.press("ctrl+q")  # at once, before the draft's quiet time
        await settle(pilot)
    with Session(engine) as session:
        assert len(session.execute(select(Draft.item_id)).scalars().all()) == 1
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert again.shown.ticked == [False, True, False, True]
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert type(again.screen).__name__.split("_")[0] != "CommandPalette"


# 5. the option's position ------------------------------------------------------------------------------------

async def first_orders(engine, name: str) -> list[tuple[int, ...]]:
    """The order (distractor ids) a teacher's screen shows the first three items in."""
    app = build_app(engine, rater_name=name)
    orders = []
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for _ in range(3):
            await settle(pilot)
            orders.append(tuple(d.id for d in app.shown.item.distractors))
            await press(pilot, "s")
    return orders


async def test_each_teacher_sees_the_options_in_an_order_of_their_own_kept_and_stored(cli, engine):
    await asyncio.to_thread(cli, "demo", "--baseline", "2")  # (the CLI runs its own event loop)
    anna, bo = await first_orders(engine, "anna"), await first_orders(engine, "bo")
    assert anna != bo  # (six options: the chance that three items agree by luck is 1 in 373,248,000)
    assert await first_orders(engine, "anna") == anna  # the same order when the items come back
    with Session(engine) as session:  # not the stored order for everyone (as before: baseline first)
        stored = [tuple(session.execute(select(Distractor.id).where(Distractor.item_id == i)
                                        .order_by(Distractor.source, Distractor.position)).scalars()) for i in (1, 2, 3)]
    assert anna != stored
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "3", "space")
    ticked = [(d, p) for _, d, accepted, p, _, _ in rows(engine) if accepted]
    assert ticked == [(anna[0][2], 2)]  # key 3 ticks the third option on screen, and that place is stored


# 6. what a tick means ----------------------------------------------------------------------------------------

async def test_the_instructions_open_on_a_first_start_in_preference_rating_and_a_line_says_what_a_tick_means(cli,
                                                                                                          engine):
    from rater.cli.rate import register_teacher

    cli("demo")
    assert register_teacher(engine, "anna") is True  # (the CLI opens the instructions then)
    app = build_app(engine, rater_name="anna", show_instructions=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert type(app.screen).__name__.split("_")[0] == "InstructionsScreen"
        await press(pilot, "escape")
        assert "Bocka godtagbara distraktorer / tick acceptable ones" in screen_text(app)
        await press(pilot, "1", "space")
    assert register_teacher(engine, "anna") is False


async def test_the_screen_speaks_swedish_when_asked(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna", language="sv")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "Rätt svar" in text and "Spara" in text and "Hoppa över" in text and "Tillbaka" in text
        await press(pilot, "r", "1")
        assert "Varför underkänns distraktor 1?" in screen_text(app)


async def test_the_hint_for_the_whole_text_is_in_the_teachers_language(cli, engine, tmp_path):
    context = "Svar 0 står här. Den andra meningen. Den tredje. Den fjärde. Den femte meningen är sist."
    cli("import", items_file(tmp_path, 1, 3, context=context))
    for language, hint in (("sv", "(c: hela texten)"), ("en", "(c: the whole text)")):
        app = build_app(engine, rater_name=f"t{language}", language=language)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await settle(pilot)
            assert hint in screen_text(app)


# 7. two windows of one teacher -------------------------------------------------------------------------------

async def test_a_save_another_window_overtook_is_not_silently_applied(cli, engine):
    cli("demo")
    first, second = build_app(engine, rater_name="anna"), build_app(engine, rater_name="anna")
    async with first.run_test(size=SIZE, notifications=True) as one, second.run_test(size=SIZE, notifications=True) as two:
        await settle(one)
        await settle(two)
        assert first.shown.item.id == second.shown.item.id == 1
        await press(one, "1", "space")  # the first window saves item 1
        await press(two, "2", "space")  # the second, which showed item 1 before that save, is told and shown it
        assert second.shown.item.id == 1 and second.shown.ticked == [True, False, False, False]
        assert "Another window saved this item" in toasts(second)
        assert [a for item, _, a, *_ in rows(engine) if item == 1] == [True, False, False, False]
        await press(two, "2", "space")  # now saved on purpose, over what the teacher sees
    assert [a for item, _, a, *_ in rows(engine) if item == 1] == [True, True, False, False]


# 8. a teacher who reads slowly --------------------------------------------------------------------------------

async def test_a_slow_reader_keeps_the_item_and_a_lapsed_hold_saves_beyond_k(cli, engine, monkeypatch):
    import rater.raters.runner

    monkeypatch.setattr(rater.raters.runner, "RENEW_SECONDS", 0.2)  # (every 30 s when teachers rate)
    cli("demo")
    cli("study", "overlap", "1")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        item = app.shown.item.id
        with session_scope(engine) as session:  # the hold is nearly over: renewing keeps it
            session.execute(update(Lease).values(expires_at=utcnow() + timedelta(seconds=1)))
        await asyncio.sleep(1.5)
        with Session(engine) as session:
            expires = session.execute(select(Lease.expires_at)).scalar_one()
            assert expires > utcnow() + timedelta(seconds=60)
        with session_scope(engine) as session:
            bo = get_or_create_rater(session, name="bo", kind="human").id
            assert Study().claim(session, rater_id=bo) != item  # others never get it while it is on screen
        # now the hold lapses anyway (a frozen machine, say) and bo rates the item meanwhile
        monkeypatch.setattr(rater.raters.runner, "RENEW_SECONDS", 3600)
        with session_scope(engine) as session:
            session.execute(update(Lease).where(Lease.item_id == item).values(expires_at=utcnow()))
            session.execute(update(Lease).where(Lease.rater_id == bo).values(expires_at=utcnow()))
        await asyncio.sleep(0.3)
        with session_scope(engine) as session:
            ids = session.execute(select(Distractor.id).where(Distractor.item_id == item)).scalars().all()
            save_judgements(session, rater_id=bo, item_id=item, judgements=[Judgement(d, True) for d in ids])
        await press(pilot, "1", "space")
        assert "your rating is kept, marked as beyond K" in toasts(app)
    assert {beyond for i, _, _, _, _, beyond in rows(engine) if i == item} == {True}
    with Session(engine) as session:
        progress = Study().progress(session)
    assert progress.lacking == 11  # K stays exact: the item counts once


# 9. nothing to rate -----------------------------------------------------------------------------------------

def test_nothing_to_rate_is_an_error_before_any_screen_opens(cli, tmp_path):
    missing = tmp_path / "typo.db"
    result = cli("--db", str(missing), "rate", "--as", "anna", ok=False)
    assert result.exit_code == 2 and "There is no database at" in result.stderr and not missing.exists()
    cli("demo")
    flat = lambda r: " ".join(r.stderr.replace("│", " ").split())  # noqa: E731
    result = cli("rate", "--as", "anna", "--source", "nosuch", ok=False)
    assert result.exit_code == 2 and "sources here: human" in flat(result)
    result = cli("rate", "--as", "anna", "--split", "train", ok=False)
    assert result.exit_code == 2 and "No items in split 'train'; the items here are in: test 12" in flat(result)
    result = cli("eval", "rate", "nosuch", "--as", "anna", ok=False)
    assert result.exit_code == 2 and "No evaluation set named 'nosuch'" in flat(result)
    for name in ("", "   ", "a\tb", "x" * 65):
        assert cli("rate", "--as", name, ok=False).exit_code == 2, name


async def test_everything_rated_is_a_friendly_end(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, *["1", "space"] * 12)
        assert "All 12 items are rated" in screen_text(app)
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert type(again.screen).__name__.split("_")[0] == "SummaryScreen" and "All 12 items are rated" in screen_text(again)


# 10. smaller things --------------------------------------------------------------------------------------------

async def test_a_replaced_rating_keeps_its_position_and_time_in_the_history(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "space", "backspace", "2", "space")
    with Session(engine) as session:
        kept = session.execute(select(RatingHistory.shown_position, RatingHistory.seconds, RatingHistory.accepted)
                               .order_by(RatingHistory.shown_position)).all()
    assert [(position, accepted) for position, _, accepted in kept] == [(1, False)]  # only the option that changed
    assert all(seconds is not None and seconds > 0 for _, seconds, _ in kept)


async def test_the_reasons_are_in_the_teachers_language(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna", language="sv")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "r", "1")
        assert "Orimlig" in screen_text(app) and "Unreasonable" not in screen_text(app)
        await press(pilot, "2")
        assert "(Orimlig)" in screen_text(app)


async def test_reviewing_replaces_the_counter_and_resaving_unchanged_writes_no_history(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "space", "2", "space", "backspace")
        status = str(app.query_one("#status").render())
        assert status.startswith("reviewing your rating no. 2") and "2 / 12" not in status
        await press(pilot, "space", "space")  # saved again as it was: no new revision, no history
    with Session(engine) as session:
        assert session.execute(select(RatingHistory)).all() == []
        assert set(session.execute(select(Rating.revision)).scalars()) == {1}


async def test_page_two_names_the_options_by_their_number_in_the_item(cli, engine, tmp_path):
    cli("import", items_file(tmp_path, 1, 12))
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "right", "r", "1")
        assert "Why is distractor 10 rejected?" in screen_text(app)
        await press(pilot, "escape")
        assert "1 (#10)" in screen_text(app)


async def test_the_end_screen_lists_only_keys_that_work_there(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, *["1", "space"] * 12)
        text = screen_text(app)
        assert "Tick" not in text and "Skip" not in text and "Leave" in text and "Back" in text


async def test_time_on_item_is_stored_with_its_judgements(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.clock.advance(7.5)  # the teacher reads for 7.5 s, then ticks (1 s) and saves (1 s)
        await press(pilot, "1", "space")
    assert {seconds for item, _, _, _, seconds, _ in rows(engine)} == {9.5}


async def test_time_reading_the_instructions_or_the_history_is_not_time_on_the_item(cli, engine):
    """The first start opens the instructions over the first item: the 30 s spent reading them are not the item's;
    nor are the 60 s with the instructions (?) or the history (h) open over a later item."""
    cli("demo")
    app = build_app(engine, rater_name="anna", show_instructions=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.clock.advance(30)
        await press(pilot, "escape")  # (the key comes a second later, still over the item)
        app.clock.advance(4)
        await press(pilot, "1", "space")  # 4 s reading the item, 1 s to tick and 1 s to save
        for key in ("question_mark", "h"):
            await press(pilot, key)  # a second on the item, then the screen opens over it
            app.clock.advance(60)
            await press(pilot, "escape")
            await press(pilot, "space")  # 1 s on the item again
    assert [seconds for _, _, _, position, seconds, _ in rows(engine) if position == 0] == [6.0, 2.0, 2.0]


async def test_the_screen_points_at_the_evidence(cli, engine):
    await asyncio.to_thread(cli, "demo", "--baseline", "2")  # baseline distractors are spans of the text
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        context = app.query_one("#context").content
        covered = {i for span in context.spans if "yellow" in str(span.style) for i in range(span.start, span.end)}
        markers = {i for m in re.finditer(r"\[\d+\]", context.plain) for i in range(m.start(), m.end())}
        assert markers  # each marked option carries its number where it ends
        kept = [i for i in range(len(context.plain)) if i not in markers]  # the text without the numbers
        plain = "".join(context.plain[i] for i in kept)
        options = [d.text for d in app.shown.item.distractors if d.source == "baseline"]
        for option in options:
            at = plain.find(option)
            assert at >= 0 and all(kept[i] in covered for i in range(at, at + len(option))), option
