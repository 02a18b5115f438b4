"""`rater study status`: the organizer's view of a study, from real screen runs with a controlled clock."""

import asyncio
import json

from sqlmodel import Session

from rater.evaluation.status import study_status
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
    result = cli("split", "--max-context-tokens", "70", "--test-fraction", "0.3")
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
    assert "cleo (fast)" in table and "marked fast: median seconds per item below 25%" in table


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
