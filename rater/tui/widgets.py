"""Widgets of the rating screen: the item header, the context and the numbered distractor options."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from rater.core.domain import Reason

PAGE_SIZE = 9  # number keys 1-9; an item with more distractors is shown in pages


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    try:
        return Reason(reason).label
    except ValueError:
        return reason


class DistractorOption(Static):
    """One candidate distractor: its number, a tick box, the text and any rejection reason."""

    ticked: reactive[bool] = reactive(False)
    reason: reactive[str | None] = reactive(None)
    text: reactive[str] = reactive("")

    def __init__(self, number: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.number = number

    def render(self) -> Text:
        box = ("[x] ", "bold green") if self.ticked else ("[ ] ", "")
        note = (f"   ({reason_label(self.reason)})", "italic red") if self.reason else ""
        return Text.assemble(box, (f"{self.number}", "bold"), "  ", self.text, note)

    def watch_ticked(self, ticked: bool) -> None:
        self.set_class(ticked, "-ticked")


class ContextPanel(VerticalScroll):
    """The reading text: a few lines until expanded with `c`, then scrollable."""

    expanded: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Static(id="context-text")

    def show(self, text: str) -> None:
        self.query_one("#context-text", Static).update(Text(text))
        self.scroll_home(animate=False)

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")


class ItemPanel(Vertical):
    """Question, the correct answer (marked) and the context of the item being rated."""

    def compose(self) -> ComposeResult:
        yield Static(id="question")
        yield Static(id="answer")
        yield ContextPanel(id="context")
        with Vertical(id="options"):
            # Nine options are built once and reused: re-mounting widgets per item costs a frame.
            for number in range(1, PAGE_SIZE + 1):
                yield DistractorOption(number, classes="option")

    def show(self, question: str, answer: str, context: str, options: list[tuple[str, bool, str | None]]) -> None:
        self.query_one("#question", Static).update(Text(question, style="bold"))
        self.query_one("#answer", Static).update(Text.assemble(("Rätt svar / Correct answer: ", "bold green"), answer))
        self.query_one(ContextPanel).show(context)
        for index, option in enumerate(self.query(DistractorOption)):
            option.display = index < len(options)
            if option.display:
                option.text, option.ticked, option.reason = options[index]

    def refresh_options(self, ticked: list[bool], reasons: list[str | None]) -> None:
        for option, tick, reason in zip(self.query(DistractorOption), ticked, reasons):
            option.ticked, option.reason = tick, reason
