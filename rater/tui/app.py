"""The rating app: one factory builds it for the CLI and the tests; only the app talks to the rating session."""

from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from rater.raters.runner import Queue
from rater.tui.screens import InstructionsScreen, ReasonScreen, SummaryScreen
from rater.tui.session import RatingSession, Shown
from rater.tui.widgets import ContextPanel, ItemPanel

MIN_WIDTH, MIN_HEIGHT = 60, 16


class RatingApp(App[None]):
    CSS_PATH = "rater.tcss"
    TITLE = "rater"
    BINDINGS = [
        *[Binding(str(n), f"toggle({n - 1})", "Tick", show=n == 1, key_display="1-9", id=f"rate.toggle{n}")
          for n in range(1, 10)],
        Binding("space,enter", "submit", "Submit", key_display="space", id="rate.submit"),
        Binding("backspace", "back", "Back", id="rate.back"),
        Binding("s", "skip", "Skip", id="rate.skip"),
        Binding("r", "reason", "Reason", id="rate.reason"),
        Binding("c", "context", "Context", id="rate.context"),
        Binding("question_mark", "instructions", "Help", key_display="?", id="rate.help"),
        Binding("escape", "quit", "Quit", key_display="esc", id="rate.quit"),
    ]

    def __init__(self, session: RatingSession, *, blind: bool = False, show_instructions: bool = False) -> None:
        super().__init__()
        self.session = session
        self.blind = blind
        self.show_instructions = show_instructions
        self.choosing_reason = False

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Vertical(id="main"):
            yield ItemPanel(id="item")
        yield Static("The terminal is too small for rating.\nMake it at least "
                     f"{MIN_WIDTH} x {MIN_HEIGHT} characters.", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        self._show_item(self.session.advance())
        if self.show_instructions:
            self.action_instructions()

    def on_resize(self, event) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.set_class(width < MIN_WIDTH or height < MIN_HEIGHT, "-too-small")

    # display -----------------------------------------------------------------------------------------------

    def _show_item(self, shown: Shown | None) -> None:
        if self.session.empty_skipped:
            self.notify(f"{self.session.empty_skipped} item(s) without distractors skipped.", severity="warning")
            self.session.empty_skipped = 0
        if shown is None:
            self._finish()
            return
        item = shown.item
        self.query_one(ItemPanel).show(item.question, item.answer, item.context,
                                       [(d.text, t, r) for d, t, r in zip(item.distractors, shown.ticked, shown.reasons)])
        self._status()

    def _status(self) -> None:
        s = self.session
        tally = f"you accepted {s.acceptance:.0%} so far" if s.acceptance is not None else "nothing rated yet"
        review = ("   reviewing an earlier item", "bold yellow") if s.shown and s.shown.reviewing else ""
        mode = "blind evaluation" if self.blind else "preference"
        self.query_one("#status", Static).update(Text.assemble(
            (f"{min(s.progress + 1, s.total)} / {s.total}", "bold"), f"   {s.rater_name}   {mode}; {tally}", review))

    def _finish(self) -> None:
        s = self.session
        text = (f"[b]All {s.total} items are rated.[/b]\n\nThis session: {s.tally.items} items, "
                f"{s.tally.judgements} distractors, {s.tally.rate:.0%} accepted.\n\n"
                "Every rating is saved. Press Enter or Esc to leave, Backspace to go back.")
        self.push_screen(SummaryScreen(text), self._after_summary)

    def _after_summary(self, _result) -> None:
        self._show_item(self.session.back())

    # actions -----------------------------------------------------------------------------------------------

    def action_toggle(self, index: int) -> None:
        if self.session.shown is None:
            return
        if self.choosing_reason:
            self.choosing_reason = False
            self._ask_reason(index)
            return
        self.session.toggle(index)
        self.query_one(ItemPanel).refresh_options(self.session.shown.ticked, self.session.shown.reasons)

    def action_submit(self) -> None:
        if self.session.shown is None:
            return
        try:
            self.session.submit()
        except OperationalError as exc:
            self.notify(f"Could not save: {exc.orig}. Your ticks are kept; press space to try again.",
                        title="Database busy", severity="error", timeout=10)
            return
        self._show_item(self.session.advance())

    def action_back(self) -> None:
        shown = self.session.back()
        if shown is None:
            self.notify("This is the first item of the session.")
            return
        self._show_item(shown)

    def action_skip(self) -> None:
        self._show_item(self.session.skip())

    def action_reason(self) -> None:
        self.choosing_reason = True
        self.notify("Press the number of the distractor to give a rejection reason.", timeout=3)

    def _ask_reason(self, index: int) -> None:
        shown = self.session.shown
        if not 0 <= index < len(shown.item.distractors):
            return

        def chosen(reason: str | None) -> None:
            if reason:
                self.session.set_reason(index, reason)
                self.query_one(ItemPanel).refresh_options(shown.ticked, shown.reasons)

        self.push_screen(ReasonScreen(index + 1, shown.item.distractors[index].text), chosen)

    def action_context(self) -> None:
        panel = self.query_one(ContextPanel)
        panel.expanded = not panel.expanded
        if panel.expanded:
            panel.focus()

    def action_instructions(self) -> None:
        self.push_screen(InstructionsScreen("evaluation.md" if self.blind else "rating.md"))


def build_app(engine: Engine, *, rater_name: str, queue: Queue = Queue(), blind: bool = False,
              shuffle_seed: int | None = None, show_instructions: bool = False) -> RatingApp:
    """The one factory the CLI and the tests use."""
    session = RatingSession(engine, rater_name=rater_name, queue=queue, shuffle_seed=shuffle_seed)
    return RatingApp(session, blind=blind, show_instructions=show_instructions)
