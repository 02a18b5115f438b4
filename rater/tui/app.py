"""The rating app: the teacher's screen. It runs the one runner in a worker and is the teacher rater's presenter,
so a teacher's ratings are saved on the same path as every other rater's, off the UI thread."""

import asyncio
from collections import deque
from dataclasses import dataclass, replace

from rich.text import Text
from sqlalchemy import Engine
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from rater.core.domain import ItemView, Judgement, Revisit
from rater.core.errors import RaterError
from rater.raters.base import RunStart
from rater.raters.human import HumanRater
from rater.raters.runner import Queue, run_rater
from rater.store.engine import session_scope
from rater.store.items import count_items_without_distractors
from rater.store.ratings import eval_set_id_of, get_or_create_rater, rater_acceptance
from rater.store.study import Study
from rater.store.tables import saved_id
from rater.tui.screens import ErrorScreen, InstructionsScreen, ReasonScreen, SummaryScreen
from rater.tui.widgets import PAGE_SIZE, ContextPanel, ItemPanel

MIN_WIDTH, MIN_HEIGHT = 60, 16
SAVING_NOTICE_DELAY = 0.15  # seconds


class ItemPresented(Message):
    """The runner asks the teacher about an item."""

    def __init__(self, item: ItemView) -> None:
        super().__init__()
        self.item = item


class QueueExhausted(Message):
    """Nothing is left to rate."""


class SaveFailed(Message):
    """The last submitted item could not be saved; it is presented again."""

    def __init__(self, item: ItemView, error: RaterError) -> None:
        super().__init__()
        self.item, self.error = item, error


@dataclass
class Shown:
    """The item on screen with the teacher's ticks and reasons so far, and the page of options shown."""

    item: ItemView
    ticked: list[bool]
    reasons: list[str | None]
    page: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.ticked) // PAGE_SIZE))

    def judgements(self) -> list[Judgement]:
        return [Judgement(d.id, ticked, reason=reason)
                for d, ticked, reason in zip(self.item.distractors, self.ticked, self.reasons)]


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


class RatingApp(App[None]):
    CSS_PATH = "rater.tcss"
    TITLE = "rater"
    BINDINGS = [
        *[Binding(str(n), f"tick({n - 1})", "Tick", show=n == 1, key_display="1-9", id=f"rate.toggle{n}")
          for n in range(1, PAGE_SIZE + 1)],
        Binding("space,enter", "submit", "Submit", key_display="space", id="rate.submit"),
        Binding("backspace", "previous", "Back", id="rate.back"),
        Binding("s", "skip", "Skip", id="rate.skip"),
        Binding("r", "reason", "Reason", id="rate.reason"),
        Binding("right,greater_than_sign", "page(1)", "Page", key_display="→", id="rate.next_page"),
        Binding("left,less_than_sign", "page(-1)", "Page", show=False, id="rate.previous_page"),
        Binding("c", "context", "Context", id="rate.context"),
        Binding("question_mark", "instructions", "Help", key_display="?", id="rate.help"),
        Binding("escape", "leave", "Quit", key_display="esc", id="rate.quit"),
    ]

    def __init__(self, engine: Engine, rater: HumanRater, queue: Queue, *, blind: bool = False,
                 show_instructions: bool = False) -> None:
        super().__init__()
        self.engine, self.rater, self.queue = engine, rater, queue
        self.rater.presenter = self
        self.blind = blind
        self.show_instructions = show_instructions
        self.shown: Shown | None = None  # None while the runner saves or loads
        self.unsaved: dict[int, tuple[list[bool], list[str | None]]] = {}  # input of items left without saving
        self.typeahead: deque[tuple[str, tuple]] = deque()
        self.choosing_reason = False
        self.saving = False
        self.nothing_left = False  # the summary is up: nothing is left to rate
        self.tally = Tally()
        self.overlap: int | None = None  # work shared out: K as the study had it when the run started

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="status")
        with Vertical(id="main"):
            yield ItemPanel(id="item")
        yield Static("The terminal is too small for rating.\nMake it at least "
                     f"{MIN_WIDTH} x {MIN_HEIGHT} characters.", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        self.run_worker(self._rate(), name="rating", exit_on_error=False)
        if self.show_instructions:
            self.action_instructions()

    def on_resize(self, event) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.set_class(width < MIN_WIDTH or height < MIN_HEIGHT, "-too-small")

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

    def exhausted(self) -> None:
        self.post_message(QueueExhausted())

    def save_failed(self, item: ItemView, error: RaterError) -> None:
        self.post_message(SaveFailed(item, error))

    def on_item_presented(self, message: ItemPresented) -> None:
        item = message.item
        kept = self.unsaved.pop(item.id, None)
        if kept is None:
            saved = {j.distractor_id: j for j in item.previous}
            kept = ([bool(saved.get(d.id) and saved[d.id].accepted) for d in item.distractors],
                    [saved[d.id].reason if d.id in saved else None for d in item.distractors])
        paged = self.shown is not None and self.shown.pages > 1
        self.shown = shown = Shown(item, *kept)
        self.saving = False
        self.nothing_left = False  # (back from the summary)
        self._refresh_item(shown)
        if paged != (shown.pages > 1):
            self.refresh_bindings()  # the footer shows the page keys only for items with several pages
        while self.typeahead and self.shown is not None:
            action, args = self.typeahead.popleft()
            getattr(self, f"action_{action}")(*args)

    def on_save_failed(self, message: SaveFailed) -> None:
        self.saving = False
        self.notify(f"Could not save: {message.error.message} Your ticks are kept; press space to try again.",
                    title="Not saved", severity="error", timeout=10)

    def on_queue_exhausted(self, _message: QueueExhausted) -> None:
        self.shown = None
        self.nothing_left = True
        self.typeahead.clear()
        t = self.tally
        headline = (f"[b]All {t.total} items are rated.[/b]" if self.overlap is None else
                    f"[b]Nothing is left for you.[/b] Every other item has {self.overlap} teachers' ratings, "
                    "or other teachers have it open.")
        text = (f"{headline}\n\nThis session: {t.items} items, "
                f"{t.judgements} distractors, {t.rate:.0%} accepted.\n\n"
                "Every rating is saved. Press Enter or Esc to leave, Backspace to go back.")
        self.push_screen(SummaryScreen(text), self._after_summary)

    def _after_summary(self, back: bool | None) -> None:
        if back:
            self.rater.decide(Revisit())

    # display -----------------------------------------------------------------------------------------------

    def _refresh_item(self, shown: Shown) -> None:
        first = shown.page * PAGE_SIZE
        page = list(zip(shown.item.distractors, shown.ticked, shown.reasons))[first:first + PAGE_SIZE]
        self.query_one(ItemPanel).show(shown.item.question, shown.item.answer, shown.item.context,
                                       [(d.text, t, r) for d, t, r in page])
        self._status()

    def _refresh_ticks(self, shown: Shown) -> None:
        first = shown.page * PAGE_SIZE
        self.query_one(ItemPanel).refresh_options(shown.ticked[first:first + PAGE_SIZE],
                                                  shown.reasons[first:first + PAGE_SIZE])

    def _status(self) -> None:
        t, shown = self.tally, self.shown
        tally = f"you accepted {t.acceptance:.0%} so far" if t.acceptance is not None else "nothing rated yet"
        mode = "blind evaluation" if self.blind else "preference"
        notes = []
        if shown is not None and shown.pages > 1:
            notes.append((f"   page {shown.page + 1}/{shown.pages} (→ ← for the other page)", "bold cyan"))
        if shown is not None and shown.item.previous:
            notes.append(("   reviewing an earlier item", "bold yellow"))
        if self.saving:
            notes.append(("   saving…", "italic"))
        if self.overlap is None:
            where = (f"{min(t.before + t.items + 1, t.total)} / {t.total}", "bold")
        else:  # work shared out: the teacher's own count, and what the study still needs
            needed = f"; the study needs {t.needed} more" if t.needed is not None else ""
            where = (f"you rated {t.before + t.items}{needed}", "bold")
        self.query_one("#status", Static).update(Text.assemble(
            where, f"   {self.rater.name}   {mode}; {tally}", *notes))

    # actions -----------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "page":  # the page keys only appear for an item with more than nine distractors
            return self.shown is not None and self.shown.pages > 1
        return True

    def _on_screen(self, action: str, *args) -> Shown | None:
        """The item on screen; None when there is none (a save runs, or the next item is on its way): then the key
        is kept for the next item, or dropped once nothing is left to rate."""
        if self.shown is None and not self.nothing_left:
            self.typeahead.append((action, args))
        return self.shown

    def on_key(self, event: events.Key) -> None:
        if event.key not in ("r", *map(str, range(1, PAGE_SIZE + 1))):
            self.choosing_reason = False  # `r` waits for a number; any other key cancels it

    def action_tick(self, index: int) -> None:
        if (shown := self._on_screen("tick", index)) is None:
            return
        index += shown.page * PAGE_SIZE
        if self.choosing_reason:
            self.choosing_reason = False
            self._ask_reason(shown, index)
            return
        if index < len(shown.ticked):
            shown.ticked[index] = not shown.ticked[index]
            if shown.ticked[index]:
                shown.reasons[index] = None  # an accepted distractor has no rejection reason
            self._refresh_ticks(shown)

    def action_submit(self) -> None:
        if (shown := self._on_screen("submit")) is None:
            return
        self.unsaved[shown.item.id] = (shown.ticked, shown.reasons)  # kept until the save is confirmed
        self._leave(shown.judgements(), saving=True)

    def action_skip(self) -> None:
        if (shown := self._on_screen("skip")) is None:
            return
        self.unsaved[shown.item.id] = (shown.ticked, shown.reasons)
        self._leave([])

    def action_previous(self) -> None:
        if (shown := self._on_screen("previous")) is None:
            return
        if not shown.item.earlier:
            self.notify("This is the first item of the session.")
            return
        self.unsaved[shown.item.id] = (shown.ticked, shown.reasons)
        self._leave(Revisit())

    def _leave(self, outcome: list[Judgement] | Revisit, saving: bool = False) -> None:
        self.choosing_reason = False
        if self.rater.decide(outcome):
            self.shown = None
            self.saving = saving
            if saving:  # "saving…" appears only for a save that takes noticeable time (a locked database)
                self.set_timer(SAVING_NOTICE_DELAY, self._status_while_saving)

    def _status_while_saving(self) -> None:
        if self.saving:
            self._status()

    def action_reason(self) -> None:
        if self._on_screen("reason") is None:
            return
        self.choosing_reason = True
        self.notify("Press the number of the distractor to give a rejection reason.", timeout=3)

    def _ask_reason(self, shown: Shown, index: int) -> None:
        if index >= len(shown.item.distractors):
            return

        def chosen(reason: str | None) -> None:
            if reason and self.shown is shown:
                shown.reasons[index] = reason
                shown.ticked[index] = False
                self._refresh_ticks(shown)

        self.push_screen(ReasonScreen(index % PAGE_SIZE + 1, shown.item.distractors[index].text), chosen)

    def action_page(self, step: int) -> None:
        if (shown := self._on_screen("page", step)) is None:
            return
        page = max(0, min(shown.pages - 1, shown.page + step))
        if page != shown.page:
            shown.page = page
            self._refresh_item(shown)

    def action_context(self) -> None:
        panel = self.query_one(ContextPanel)
        panel.expanded = not panel.expanded
        if panel.expanded:
            panel.focus()

    def action_instructions(self) -> None:
        self.push_screen(InstructionsScreen("evaluation.md" if self.blind else "rating.md"))

    def action_leave(self) -> None:
        """Leave: at once when the teacher is being asked, else as soon as the save in progress is done."""
        self.typeahead.clear()
        self.rater.stop()
        if not self.workers or all(w.is_finished for w in self.workers):
            self.exit()


def build_app(engine: Engine, *, rater_name: str, queue: Queue = Queue(), blind: bool = False,
              shuffle_seed: int | None = None, show_instructions: bool = False) -> RatingApp:
    """The one factory the CLI and the tests use."""
    if shuffle_seed is not None:
        queue = replace(queue, shuffle_seed=shuffle_seed)
    return RatingApp(engine, HumanRater(rater_name), queue, blind=blind, show_instructions=show_instructions)
