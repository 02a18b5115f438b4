"""Widgets of the rating screen: the item header, the reading text with its evidence marked, the numbered options,
and the main area that scrolls and says when options lie below the fold."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from rater.core.evidence import Segment, excerpt, segments
from rater.core.texts import Texts

PAGE_SIZE = 9  # number keys 1-9; an item with more distractors is shown in pages
ANSWER_STYLE = "bold green underline"
OPTION_STYLE = "bold yellow"


def reason_label(reason: str | None, texts: Texts | None = None) -> str:
    """A stored reason as the teacher reads it (the five in the screen's language, else their own words)."""
    return (texts or Texts("en")).reason(reason)


class DistractorOption(Static):
    """One candidate distractor: its key, a tick box, the text, its number in the item (on pages after the first),
    any rejection reason, and "new" when it was added after the teacher rated the item."""

    ticked: reactive[bool] = reactive(False)
    reason: reactive[str | None] = reactive(None)
    text: reactive[str] = reactive("")
    overall: reactive[int] = reactive(0)  # the option's number in the item, shown when it differs from the key
    new: reactive[str] = reactive("")  # the word for "new", when the option is new

    def __init__(self, number: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.number = number

    def render(self) -> Text:
        box = ("[x] ", "bold green") if self.ticked else ("[ ] ", "")
        overall = (f" (#{self.overall})", "dim") if self.overall and self.overall != self.number else ""
        new = (f"  [{self.new}]", "bold magenta") if self.new else ""
        note = (f"   ({reason_label(self.reason, getattr(self.app, 'texts', None))})", "italic red") if self.reason else ""
        return Text.assemble(box, (f"{self.number}", "bold"), overall, "  ", self.text, new, note)

    def watch_ticked(self, ticked: bool) -> None:
        self.set_class(ticked, "-ticked")


def marked_text(pieces: list[Segment]) -> Text:
    """The text's pieces with the answer and each option marked where they occur (option n as "[n]" after it)."""
    shown = Text()
    for piece in pieces:
        style = ANSWER_STYLE if "answer" in piece.labels else OPTION_STYLE if piece.labels else ""
        shown.append(piece.text, style=style)
        for label in piece.ends:
            shown.append(f"[{label}]", style="bold yellow")
    return shown


class ContextPanel(Static):
    """The reading text: first the sentences around the one that holds the answer, the whole text with `c`; where
    the answer (green) and each option (yellow, numbered) occur is marked."""

    expanded: reactive[bool] = reactive(False)

    def show(self, text: str, answer: str, options: list[str]) -> None:
        self.parts = (text, answer, options)
        self._render_text()

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")
        if hasattr(self, "parts"):
            self._render_text()

    def _render_text(self) -> None:
        text, answer, options = self.parts
        texts = getattr(self.app, "texts", None) or Texts("en")
        start, end = (0, len(text)) if self.expanded else excerpt(text, answer)
        pieces = segments(text, answer, options, start, end)
        shown = marked_text(pieces)
        if start > 0:
            shown = Text.assemble(("… ", "dim"), shown)
        if end < len(text):
            shown.append(f" …  ({texts.say('whole_text')})", style="dim")
        if marks := sorted({label for piece in pieces for label in piece.ends}, key=int):  # say what "[n]" means
            shown.append(f"\n({texts.say('option_marks', mark=marks[0])})", style="dim")
        self.update(shown)


class MainArea(VerticalScroll):
    """The item, scrollable when its options do not fit; tells the screen whenever what is visible changes."""

    class Scrolled(Message):
        """What is visible in the main area changed (scrolled, resized, redrawn)."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.post_message(self.Scrolled())

    def on_resize(self, _event) -> None:  # (also when it is shown again after the terminal was too small)
        self.post_message(self.Scrolled())


class ItemPanel(Vertical):
    """Question, the correct answer (marked), the context and the options of the item being rated."""

    def compose(self) -> ComposeResult:
        yield Static(id="notes")
        yield Static(id="question")
        yield Static(id="answer")
        yield ContextPanel(id="context")
        with Vertical(id="options"):
            # Nine options are built once and reused: re-mounting widgets per item costs a frame.
            for number in range(1, PAGE_SIZE + 1):
                yield DistractorOption(number, classes="option")

    def show(self, question: str, answer: str, answer_label: str, context: str, options: list[str],
             page: list[tuple[int, str, bool, str | None, str]]) -> None:
        """`page` holds (overall number, text, ticked, reason, "new" or "") for the options on screen."""
        self.query_one("#question", Static).update(Text(question, style="bold"))
        self.query_one("#answer", Static).update(Text.assemble((f"{answer_label}: ", "bold green"), answer))
        self.query_one(ContextPanel).show(context, answer, options)
        for index, option in enumerate(self.query(DistractorOption)):
            option.display = index < len(page)
            if option.display:
                option.overall, option.text, option.ticked, option.reason, option.new = page[index]

    def refresh_options(self, ticked: list[bool], reasons: list[str | None]) -> None:
        for option, tick, reason in zip(self.query(DistractorOption), ticked, reasons):
            option.ticked, option.reason = tick, reason
