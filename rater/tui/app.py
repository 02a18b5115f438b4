"""The rating app: the teacher's screen. It runs the one runner in a worker and is the teacher rater's presenter,
so a teacher's ratings are saved on the same path as every other rater's, off the UI thread.

A saved label is a decision the teacher made about what the screen showed: a key acts only on an item that is
drawn and was on screen a moment (a double tap never saves the next item), never while the terminal is too small,
and a save needs every option to have been in view (scrolled to, or on a page that was shown). Unsaved ticks are
kept as a draft, so Esc or a crash loses nothing."""

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from rich.text import Text
from sqlalchemy import Engine
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from rater.core.domain import ItemView, Judgement, LookAgain, Revisit
from rater.core.errors import RaterError, StaleSave
from rater.core.texts import TICK_MEANING, Texts
from rater.raters.base import RunStart
from rater.raters.human import HumanRater
from rater.raters.runner import Queue, run_rater
from rater.store.engine import session_scope
from rater.store.flags import flag_item
from rater.store.items import count_items_without_distractors
from rater.store.ratings import RatedItem, eval_set_id_of, get_or_create_rater, rater_acceptance, rater_history
from rater.store.study import LOOK_AGAIN_SECONDS, Study
from rater.store.tables import saved_id
from rater.tui.screens import ErrorScreen, FlagScreen, HistoryScreen, InstructionsScreen, ReasonScreen, SummaryScreen
from rater.tui.widgets import PAGE_SIZE, ContextPanel, DistractorOption, ItemPanel, MainArea

MIN_WIDTH, MIN_HEIGHT = 60, 16
COMPACT_BELOW = 100  # columns: in a narrower terminal the key bar drops its padding
SAVING_NOTICE_DELAY = 0.15  # seconds
MIN_DWELL = 0.5  # seconds an item is on screen before a key can save, skip or leave it: a double tap saves nothing
DRAFT_DELAY = 0.2  # seconds of quiet after a tick before the draft is written


class ItemPresented(Message):
    """The runner asks the teacher about an item."""

    def __init__(self, item: ItemView) -> None:
        super().__init__()
        self.item = item


class QueueExhausted(Message):
    """Nothing is left to rate but the items skipped twice."""

    def __init__(self, left: Sequence[ItemView]) -> None:
        super().__init__()
        self.left = left


class SaveFailed(Message):
    """The last submitted item could not be saved (or another window saved it first); it is presented again."""

    def __init__(self, item: ItemView, error: RaterError) -> None:
        super().__init__()
        self.item, self.error = item, error


class BeyondK(Message):
    """The last save came after the item had its K teachers."""


@dataclass
class Shown:
    """The item on screen: the teacher's ticks and reasons so far, the page shown, which options have been in view,
    and the time it has been on screen (paused while the terminal is away or too small)."""

    item: ItemView
    ticked: list[bool]
    reasons: list[str | None]
    page: int = 0
    seen: set[int] = field(default_factory=set)
    drawn_at: float | None = None  # when the item was first drawn (None: not yet)
    visible_since: float | None = None
    seconds: float = 0.0
    changed: bool = False  # ticks or reasons changed since the item was shown (a draft is due)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.ticked) // PAGE_SIZE))

    def on_screen(self, now: float) -> float:
        return self.seconds + (now - self.visible_since if self.visible_since is not None else 0.0)

    def pause(self, now: float) -> None:
        if self.visible_since is not None:
            self.seconds += now - self.visible_since
            self.visible_since = None

    def resume(self, now: float) -> None:
        if self.visible_since is None:
            self.visible_since = now

    def judgements(self, seconds: float) -> list[Judgement]:
        return [Judgement(d.id, ticked, reason=reason, seconds=round(seconds, 2))
                for d, ticked, reason in zip(self.item.distractors, self.ticked, self.reasons)]

    def marks(self) -> dict[int, tuple[bool, str | None]]:
        """The draft: every tick and reason, or {} when there is nothing to keep."""
        if not any(self.ticked) and not any(self.reasons):
            return {}
        return {d.id: (t, r) for d, t, r in zip(self.item.distractors, self.ticked, self.reasons)}


@dataclass
class Tally:
    """Counts for the status line and the summary: the queue's size, and what this rater has done."""

    total: int = 0
    before: int = 0  # items of the queue rated before this session
    items: int = 0  # items rated in this session
    judgements: int = 0
    accepted: int = 0
    accepted_before: int = 0
    judged_before: int = 0
    needed: int | None = None  # work shared out: items the study still needs ratings for

    @property
    def rate(self) -> float:
        return self.accepted / self.judgements if self.judgements else 0.0

    @property
    def acceptance(self) -> float | None:
        """This rater's share of accepted distractors over everything rated, before and in this session."""
        judged = self.judged_before + self.judgements
        return (self.accepted_before + self.accepted) / judged if judged else None


def rating_bindings(texts: Texts) -> list[Binding]:
    """The screen's keys, described in the teacher's language."""
    say = texts.say
    return [
        *[Binding(str(n), f"tick({n - 1})", say("tick"), show=n == 1, key_display="1-9", id=f"rate.tick{n}")
          for n in range(1, PAGE_SIZE + 1)],
        Binding("space,enter", "submit", say("save"), key_display=say("space_key"), id="rate.submit"),
        # the keys a teacher cannot do without come first: a narrow terminal cuts the key bar off at the right
        Binding("escape", "leave", say("leave"), key_display="esc", id="rate.leave"),
        Binding("question_mark", "instructions", say("help"), key_display="?", id="rate.help"),
        Binding("backspace", "previous", say("back"), id="rate.back"),
        Binding("s", "skip", say("skip"), id="rate.skip"),
        Binding("r", "reason", say("reason"), id="rate.reason"),
        Binding("right,greater_than_sign", "page(1)", say("page"), key_display="→", id="rate.next_page"),
        Binding("left,less_than_sign", "page(-1)", say("page"), show=False, id="rate.previous_page"),
        Binding("c", "context", say("context"), id="rate.context"),
        Binding("h", "history", say("history"), id="rate.history"),
        Binding("f", "flag", say("flag"), show=False, id="rate.flag"),  # in the instructions; the footer is full
    ]


class ItemScreen(Screen):
    """The screen with the item: while another covers it (the instructions, the history, a reason), the item's time
    on screen does not run."""

    def on_screen_suspend(self, _event: events.ScreenSuspend) -> None:
        self._covered(True)

    def on_screen_resume(self, _event: events.ScreenResume) -> None:
        self._covered(False)

    def _covered(self, covered: bool) -> None:
        if isinstance(self.app, RatingApp):
            self.app.covered = covered
            self.app._visibility_changed()


class RatingApp(App[None]):
    CSS_PATH = "rater.tcss"
    TITLE = "rater"
    ENABLE_COMMAND_PALETTE = False  # its "Quit" would leave without keeping the ticks on screen

    def __init__(self, engine: Engine, rater: HumanRater, queue: Queue, *, blind: bool = False,
                 show_instructions: bool = False, texts: Texts | None = None,
                 clock: Callable[[], float] = time.monotonic, notices: Sequence[str] = ()) -> None:
        super().__init__()
        self.notices = tuple(notices)  # catalog keys of warnings to show once the screen is up
        self.engine, self.rater, self.queue = engine, rater, queue
        self.rater.presenter = self
        self.blind = blind
        self.show_instructions = show_instructions
        self.texts = texts or Texts()
        self.clock = clock
        self.shown: Shown | None = None  # None while the runner saves or loads: then no key acts
        self.unsaved: dict[int, tuple[list[bool], list[str | None]]] = {}  # input of items whose save failed
        self.choosing_reason = False
        self.saving = False
        self.nothing_left = False  # the summary is up: nothing is left to rate
        self.too_small = False
        self.away = False  # the terminal lost focus: time on item pauses
        self.covered = False  # another screen covers the item's (the instructions): time on item pauses
        self.tally = Tally()
        self.overlap: int | None = None  # work shared out: K as the study had it when the run started
        self.run_start: RunStart | None = None
        self.left: Sequence[ItemView] = ()  # items skipped twice, listed by the summary
        self.draft_timer: Timer | None = None
        self.look_timer: Timer | None = None  # while "nothing is left for you" is up (work shared out)

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="status")
        yield Static(Text(TICK_MEANING, style="italic"), id="hint")
        with MainArea(id="main"):
            yield ItemPanel(id="item")
        yield Static(id="more")
        yield Static(self.texts.say("too_small", width=MIN_WIDTH, height=MIN_HEIGHT), id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        self.run_worker(self._rate(), name="rating", exit_on_error=False)
        for key in self.notices:
            self.notify(self.texts.say(key), severity="warning", timeout=20)
        if self.show_instructions:
            self.action_instructions()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)
        self.call_after_refresh(self._update_seen)
        self._status()  # a narrow line leaves the name out

    def _fit(self, width: int, height: int) -> None:
        self.query_one(Footer).compact = width < COMPACT_BELOW  # more keys fit in a narrow terminal
        self.too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(self.too_small, "-too-small")
        if self.shown is not None:
            self._visibility_changed()

    def get_default_screen(self) -> Screen:
        return ItemScreen(id="_default")

    def on_app_blur(self, _event: events.AppBlur) -> None:
        self.away = True
        self._visibility_changed()

    def on_app_focus(self, _event: events.AppFocus) -> None:
        self.away = False
        self._visibility_changed()

    def _visibility_changed(self) -> None:
        """Time on item runs only while the item can be seen."""
        if self.shown is None or self.shown.drawn_at is None:
            return
        if self.too_small or self.away or self.covered:
            self.shown.pause(self.clock())
        else:
            self.shown.resume(self.clock())

    # the runner, in a worker ----------------------------------------------------------------------------------

    async def _rate(self) -> None:
        before = asyncio.create_task(asyncio.to_thread(self._before))  # status figures, beside the runner's start
        before.add_done_callback(self._show_before)
        await run_rater(self.rater, self.engine, self.queue, on_item=self._saved, on_start=self._started)
        self.exit()

    def _show_before(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            return  # the runner opens the same database and reports any failure itself
        if task.result():
            self.notify(f"{task.result()} item(s) without distractors skipped.", severity="warning")
        if self.shown is not None:
            self._status()

    def _before(self) -> int:
        """This rater's acceptance so far (for the status line) and how many items have nothing to rate."""
        with session_scope(self.engine) as session:
            rater_id = saved_id(get_or_create_rater(session, name=self.rater.name, kind=self.rater.kind))
            eval_set_id = eval_set_id_of(session, self.queue.eval_set)
            self.tally.accepted_before, self.tally.judged_before = rater_acceptance(
                session, rater_id=rater_id, eval_set_id=eval_set_id)
            progress = Study(eval_set_id, self.queue.where).progress(session)
            if progress is not None:  # work shared out: the teacher's own count of items rated in this study so far
                self.tally.before = progress.by_teacher.get(self.rater.name, 0)
            return 0 if self.queue.eval_set else count_items_without_distractors(session, where=self.queue.where)

    def _started(self, start: RunStart) -> None:
        self.run_start = start
        self.tally.total = start.total
        self.overlap = start.overlap
        if start.overlap is None:
            self.tally.before = start.total - start.pending
        else:
            self.tally.needed = start.pending

    def _count_needed(self) -> None:
        """Work shared out: what the study still needs, counted again after each save (other teachers rate too)."""
        with session_scope(self.engine) as session:
            needed = Study.named(session, self.queue.eval_set, self.queue.where).lacking(session)
        self.call_from_thread(self._show_needed, needed)

    def _show_needed(self, needed: int | None) -> None:
        """The count may arrive after the next item is shown: show it then."""
        self.tally.needed = needed
        if self.shown is not None:
            self._status()

    def _saved(self, item: ItemView, judgements: list[Judgement]) -> None:
        self.unsaved.pop(item.id, None)
        self.saving = False
        if not item.previous:  # a revisited item was counted when it was first saved
            self.tally.items += 1
            self.tally.judgements += len(judgements)
            self.tally.accepted += sum(j.accepted for j in judgements)
        if self.overlap is not None:
            self.run_worker(self._count_needed, thread=True, group="count", exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == "rating" and event.state == WorkerState.ERROR:
            self.push_screen(ErrorScreen(event.worker.error), lambda _: self.exit(return_code=2))

    # the presenter: what the teacher rater asks for -------------------------------------------------------------

    def present(self, item: ItemView) -> None:
        self.post_message(ItemPresented(item))

    def exhausted(self, left: Sequence[ItemView]) -> None:
        self.post_message(QueueExhausted(left))

    def save_failed(self, item: ItemView, error: RaterError) -> None:
        self.post_message(SaveFailed(item, error))

    def beyond_k(self, item: ItemView) -> None:
        self.post_message(BeyondK())

    def on_item_presented(self, message: ItemPresented) -> None:
        item = message.item
        kept = self.unsaved.pop(item.id, None)
        if kept is None:
            marks = {j.distractor_id: j for j in (item.draft or item.previous)}
            kept = ([bool(marks.get(d.id) and marks[d.id].accepted) for d in item.distractors],
                    [marks[d.id].reason if d.id in marks else None for d in item.distractors])
        paged = self.shown is not None and self.shown.pages > 1
        self.shown = shown = Shown(item, *kept)
        self.saving = False
        if self.nothing_left:  # back from the summary
            self.nothing_left = False
            self.refresh_bindings()
            if isinstance(self.screen, SummaryScreen):  # an item came free while it was up
                self.pop_screen()
        self._looking(False)
        self._refresh_item(shown)
        self.query_one(MainArea).scroll_home(animate=False)
        if paged != (shown.pages > 1):
            self.refresh_bindings()  # the footer shows the page keys only for items with several pages
        for note in item.notes:
            self.notify(note, timeout=8)
        self.call_after_refresh(self._drawn, shown)

    def _drawn(self, shown: Shown) -> None:
        """The item is on the screen: from now on keys act on it, and its time on screen runs."""
        if self.shown is not shown:
            return
        shown.drawn_at = self.clock()
        self._visibility_changed()
        self._update_seen()

    def on_save_failed(self, message: SaveFailed) -> None:
        self.saving = False
        if isinstance(message.error, StaleSave):
            self.unsaved.pop(message.item.id, None)  # the newer answer is shown instead, and the teacher asked
            self.notify(self.texts.say("overtaken"), severity="warning", timeout=15)
            return
        self.notify(self.texts.say("not_saved", error=getattr(message.error, "reason", message.error.message)),
                    severity="error", timeout=10)

    def on_beyond_k(self, _message: BeyondK) -> None:
        self.notify(self.texts.say("beyond_k"), severity="warning", timeout=10)

    def on_queue_exhausted(self, message: QueueExhausted) -> None:
        self.shown = None
        self.nothing_left = True
        self.left = message.left
        self.refresh_bindings()
        t, say = self.tally, self.texts.say
        looks_again = False
        if message.left:  # items skipped twice are not rated: the headline must not say everything is
            headline = say("rated_but_left", rated=t.before + t.items, left=len(message.left))
        elif self.overlap is not None:
            looks_again = t.needed != 0  # items other teachers hold may come free
            headline = say("nothing_left", n=self.overlap) if looks_again else say("study_done", n=self.overlap)
        else:
            headline = say("all_rated", total=t.total)
        text = (f"[b]{headline}[/b]\n\n" + say("session", items=t.items, judgements=t.judgements, share=f"{t.rate:.0%}")
                + "\n\n" + say("all_saved")
                + (f"\n\n{say('screen_looks_again', seconds=LOOK_AGAIN_SECONDS)}" if looks_again else ""))
        if isinstance(self.screen, SummaryScreen):  # it looked again and found nothing
            if self.screen.text == text and [i.id for i in self.screen.left] == [i.id for i in message.left]:
                return
            self.pop_screen()
        self.push_screen(SummaryScreen.make(text, message.left, self.texts), self._after_summary)
        self._looking(looks_again)

    def _looking(self, on: bool) -> None:
        """Start or stop looking for an item again (the summary says nothing is left while work is shared out)."""
        if on and self.look_timer is None:
            self.look_timer = self.set_interval(LOOK_AGAIN_SECONDS, self._look_again)
        elif not on and self.look_timer is not None:
            self.look_timer.stop()
            self.look_timer = None

    def _look_again(self) -> None:
        """Work shared out and nothing left: ask the run to look for an item again while the summary is up."""
        if self.nothing_left and isinstance(self.screen, SummaryScreen):
            self.rater.decide(LookAgain())

    def _after_summary(self, answer: int | str | None) -> None:
        if answer == "back":
            self.rater.decide(Revisit())
        elif answer == "history":
            self._open_history()
        elif isinstance(answer, int):
            self.rater.decide(Revisit(answer))
        else:
            self.action_leave()

    # display -----------------------------------------------------------------------------------------------

    def _refresh_item(self, shown: Shown) -> None:
        first = shown.page * PAGE_SIZE
        item = shown.item
        new = item.new_distractors()
        page = [(first + n + 1, d.text, t, r, self.texts.say("new_option") if d.id in new else "")
                for n, (d, t, r) in enumerate(list(zip(item.distractors, shown.ticked, shown.reasons))
                                              [first:first + PAGE_SIZE])]
        self.query_one(ItemPanel).show(item.question, item.answer, self.texts.say("correct_answer"), item.context,
                                       [d.text for d in item.distractors], page)
        self._status()

    def _refresh_ticks(self, shown: Shown) -> None:
        first = shown.page * PAGE_SIZE
        self.query_one(ItemPanel).refresh_options(shown.ticked[first:first + PAGE_SIZE],
                                                  shown.reasons[first:first + PAGE_SIZE])

    def _status(self) -> None:
        t, shown, say = self.tally, self.shown, self.texts.say
        tally = say("accepted_so_far", share=f"{t.acceptance:.0%}") if t.acceptance is not None else say("nothing_rated")
        mode = say("mode_blind") if self.blind else say("mode_preference")
        notes: list[tuple[str, str]] = []
        if shown is not None and shown.pages > 1:
            notes.append((f"   {say('page_of', page=shown.page + 1, pages=shown.pages)}", "bold cyan"))
        if shown is not None and shown.item.skipped:
            notes.append((f"   {say('skipped', n=shown.item.skipped)}", "yellow"))
        if self.saving:
            notes.append((f"   {say('saving')}", "italic"))
        if self.queue.uncertain:
            unjudged = shown is not None and shown.item.uncertainty is None
            notes.append((f"   {say('no_judge' if unjudged else 'by_uncertainty')}", "magenta"))
        if shown is not None and shown.item.previous:  # instead of the counter, which would say the wrong item
            where = (say("reviewing", n=shown.item.earlier + 1), "bold yellow")
        elif self.overlap is None:
            where = (f"{min(t.before + t.items + 1, t.total)} / {t.total}", "bold")
        else:  # work shared out: the teacher's own count, and what the study still needs
            needed = f"; {say('study_needs', n=t.needed)}" if t.needed is not None else ""
            where = (f"{say('you_rated', n=t.before + t.items)}{needed}", "bold")
        name = f"   {self.rater.name}" if self.size.width >= COMPACT_BELOW else ""  # a narrow line keeps the tally
        self.query_one("#status", Static).update(Text.assemble(where, f"{name}   {mode}; {tally}", *notes))

    def on_main_area_scrolled(self, _message: MainArea.Scrolled) -> None:
        self.call_after_refresh(self._update_seen)  # once the options have their new places

    def _update_seen(self) -> None:
        """Mark the options fully in view as seen, and say when options lie below the fold."""
        shown = self.shown
        more = self.query_one("#more", Static)
        if shown is None or shown.drawn_at is None or self.too_small:
            more.update("")
            return
        main = self.query_one(MainArea)
        view = main.region
        hidden_below = False
        for index, option in enumerate(self.query(DistractorOption)):
            if not option.display:
                continue
            region: Region = option.region
            if region.height and view.contains_region(region):
                shown.seen.add(shown.page * PAGE_SIZE + index)
            elif region.y >= view.bottom or not region.height:
                hidden_below = True
        more.update(Text(self.texts.say("more_below"), style="bold reverse") if hidden_below else "")

    # actions -----------------------------------------------------------------------------------------------

    ITEM_ACTIONS = {"tick", "submit", "previous", "skip", "reason", "page", "context", "history", "flag"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in self.ITEM_ACTIONS and self.nothing_left:  # the summary lists its own keys
            return False
        if action == "page":  # the page keys only appear for an item with more than nine distractors
            return self.shown is not None and self.shown.pages > 1
        return True

    def _on_screen(self) -> Shown | None:
        """The item a key may act on: one that is drawn, while the screen is big enough; else None (the key does
        nothing: keys typed while the next item is on its way are never kept for it)."""
        shown = self.shown
        if shown is None or shown.drawn_at is None or self.too_small:
            return None
        return shown

    def _dwelt(self, shown: Shown) -> bool:
        """Whether the item has been on screen long enough to be decided on (a double tap is not a decision)."""
        if shown.drawn_at is not None and self.clock() - shown.drawn_at >= MIN_DWELL:
            return True
        self.notify(self.texts.say("just_shown"), timeout=2)
        return False

    def on_key(self, event: events.Key) -> None:
        if event.key not in ("r", "escape", *map(str, range(1, PAGE_SIZE + 1))):
            self.choosing_reason = False  # `r` waits for a number; any other key cancels it (Esc: see action_leave)

    def action_tick(self, index: int) -> None:
        if (shown := self._on_screen()) is None:
            return
        key, index = index + 1, index + shown.page * PAGE_SIZE
        choosing_reason, self.choosing_reason = self.choosing_reason, False
        if index >= len(shown.ticked):
            self.notify(self.texts.say("no_option", number=key), timeout=3)
        elif index not in shown.seen:  # a tick or reason is a decision about what the teacher has read
            self.notify(self.texts.say("tick_unseen", number=key), severity="warning", timeout=5)
        elif choosing_reason:
            self._ask_reason(shown, index)
        else:
            shown.ticked[index] = not shown.ticked[index]
            if shown.ticked[index]:
                shown.reasons[index] = None  # an accepted distractor has no rejection reason
            self._refresh_ticks(shown)
            self._changed(shown)

    def _changed(self, shown: Shown) -> None:
        """Ticks or reasons changed: the draft is written once the teacher pauses."""
        shown.changed = True
        if self.draft_timer is not None:
            self.draft_timer.stop()
        self.draft_timer = self.set_timer(DRAFT_DELAY, lambda: self._write_draft(shown))

    def _write_draft(self, shown: Shown) -> None:
        if shown.changed:
            shown.changed = False
            self.rater.draft(shown.item, shown.marks())

    def action_submit(self) -> None:
        if (shown := self._on_screen()) is None or not self._dwelt(shown):
            return
        unseen = [n + 1 for n in range(len(shown.ticked)) if n not in shown.seen]
        if unseen:
            self.notify(self.texts.say("not_seen", numbers=", ".join(map(str, unseen)), n=len(unseen)),
                        severity="warning", timeout=6)
            return
        shown.changed = False  # the save deletes the draft
        self.unsaved[shown.item.id] = (shown.ticked, shown.reasons)  # kept until the save is confirmed
        self._leave(shown.judgements(shown.on_screen(self.clock())), saving=True)

    def action_skip(self) -> None:
        if (shown := self._on_screen()) is None or not self._dwelt(shown):
            return
        self._write_draft(shown)
        self._leave([])

    def action_previous(self) -> None:
        if (shown := self._on_screen()) is None or not self._dwelt(shown):
            return
        if not shown.item.earlier:
            self.notify(self.texts.say("first_item"))
            return
        self._write_draft(shown)
        self._leave(Revisit())

    def _leave(self, outcome: list[Judgement] | Revisit, saving: bool = False) -> None:
        self.choosing_reason = False
        if self.rater.decide(outcome):
            self.shown = None
            self.saving = saving
            self.query_one("#more", Static).update("")
            if saving:  # "saving…" appears only for a save that takes noticeable time (a locked database)
                self.set_timer(SAVING_NOTICE_DELAY, self._status_while_saving)

    def _status_while_saving(self) -> None:
        if self.saving:
            self._status()

    def action_reason(self) -> None:
        if self._on_screen() is None:
            return
        self.choosing_reason = True
        self.notify(self.texts.say("reason_prompt"), timeout=3)

    def _ask_reason(self, shown: Shown, index: int) -> None:
        def chosen(reason: str | None) -> None:
            if reason and self.shown is shown:
                shown.reasons[index] = reason
                shown.ticked[index] = False
                self._refresh_ticks(shown)
                self._changed(shown)

        self.clear_notifications()  # the prompt that asked for the number would sit over the dialog
        self.push_screen(ReasonScreen.make(index + 1, shown.item.distractors[index].text, self.texts), chosen)

    def action_page(self, step: int) -> None:
        if (shown := self._on_screen()) is None:
            return
        page = max(0, min(shown.pages - 1, shown.page + step))
        if page != shown.page:
            shown.page = page
            self._refresh_item(shown)
            self.query_one(MainArea).scroll_home(animate=False)
            self.call_after_refresh(self._update_seen)

    def action_context(self) -> None:
        if self.too_small:
            return
        panel = self.query_one(ContextPanel)
        panel.expanded = not panel.expanded
        self.call_after_refresh(self._update_seen)

    def action_instructions(self) -> None:
        self.push_screen(InstructionsScreen.make("evaluation.md" if self.blind else "rating.md", self.texts))

    def action_flag(self) -> None:
        """Flag the item on screen as broken (a wrong answer, a typo), with an optional note, for the organizer."""
        if (shown := self._on_screen()) is None or self.run_start is None:
            return
        rater_id, item_id = self.run_start.rater_id, shown.item.id

        def flagged(note: str | None) -> None:
            if note is not None:
                self.run_worker(lambda: self._store_flag(rater_id, item_id, note), thread=True, group="flag",
                                exit_on_error=False)

        self.push_screen(FlagScreen.make(shown.item.question, self.texts), flagged)

    def _store_flag(self, rater_id: int, item_id: int, note: str) -> None:
        with session_scope(self.engine) as session:
            flag_item(session, rater_id=rater_id, item_id=item_id, note=note)
        self.call_from_thread(self.notify, self.texts.say("flagged"), timeout=4)

    def action_history(self) -> None:
        if self._on_screen() is None:
            return
        self._open_history()

    def _open_history(self) -> None:
        if self.shown is not None:
            self._write_draft(self.shown)
        self.push_screen(HistoryScreen.make(self._history_rows, self.texts), self._after_history)

    def _history_rows(self, text: str) -> list[RatedItem]:
        start = self.run_start
        if start is None:
            return []
        with session_scope(self.engine) as session:
            return rater_history(session, rater_id=start.rater_id, eval_set_id=start.eval_set_id, text=text)

    def _after_history(self, item_id: int | None) -> None:
        if item_id is not None and self.rater.decide(Revisit(item_id)):
            self.shown = None
        elif self.nothing_left:  # opened from the summary, and closed: the summary again
            self.on_queue_exhausted(QueueExhausted(self.left))

    def farewell(self) -> str:
        """What the terminal says once the screen has closed: what this session saved, and that it is kept."""
        return self.texts.say("farewell", n=self.tally.items, judgements=self.tally.judgements)

    async def action_quit(self) -> None:
        """ctrl+q leaves as Esc does: the ticks on screen are kept as a draft first."""
        self.choosing_reason = False
        self.action_leave()

    def action_leave(self) -> None:
        """Leave: at once when the teacher is being asked, else as soon as the save in progress is done. The item
        on screen keeps its ticks as a draft."""
        if self.choosing_reason:  # Esc after `r` cancels the reason, nothing else
            self.choosing_reason = False
            return
        if self.shown is not None:
            self._write_draft(self.shown)
        self.rater.stop()
        if not self.workers or all(w.is_finished for w in self.workers):
            self.exit()


def build_app(engine: Engine, *, rater_name: str, queue: Queue = Queue(), blind: bool = False,
              shuffle_seed: int | None = None, show_instructions: bool = False, language: str | None = None,
              clock: Callable[[], float] = time.monotonic, notices: Sequence[str] = ()) -> RatingApp:
    """The one factory the CLI and the tests use; the screen's keys are described in the teacher's language."""
    if shuffle_seed is not None:
        queue = replace(queue, shuffle_seed=shuffle_seed)
    texts = Texts(language)
    app_class = type(f"RatingApp_{texts.language}", (RatingApp,),
                     {"BINDINGS": rating_bindings(texts), "__module__": RatingApp.__module__})
    return app_class(engine, HumanRater(rater_name), queue, blind=blind, show_instructions=show_instructions,
                     texts=texts, clock=clock, notices=notices)
