"""Modal and end screens: instructions, rejection reasons and the summary."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from rater.core import paths
from rater.core.domain import Reason
from rater.core.errors import RaterError


def instructions_text(name: str) -> str:
    return paths.instructions_text(name)


class InstructionsScreen(ModalScreen[None]):
    """The rater instructions, Swedish then English; any of the bindings closes it."""

    BINDINGS = [Binding("escape,question_mark,enter,space,q", "dismiss", "Close", id="instructions.close")]

    def __init__(self, document: str) -> None:
        super().__init__()
        self.document = document

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="instructions"):
            yield Markdown(instructions_text(self.document))
        yield Footer()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)


class ReasonScreen(ModalScreen[str | None]):
    """Pick why a distractor is rejected: one of the five reasons, or free text."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel")]

    def __init__(self, number: int, text: str) -> None:
        super().__init__()
        self.number, self.text = number, text

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-box"):
            yield Static(Text.assemble(f"Why is distractor {self.number} rejected?\n", (self.text, "italic")),
                         id="reason-title")
            options = [Option(f"{n}  {reason.label}", id=reason.value) for n, reason in enumerate(Reason, 1)]
            yield OptionList(*options, Option("6  Other (type it)", id="other"), id="reason-list")
            yield Input(placeholder="Your own reason, then Enter", id="reason-text")

    def on_mount(self) -> None:
        self.query_one("#reason-text").display = False
        self.query_one(OptionList).focus()

    def on_key(self, event) -> None:
        if event.character and event.character in "123456" and not self.query_one("#reason-text").display:
            event.stop()
            self._choose(list(Reason)[int(event.character) - 1].value if event.character != "6" else "other")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self._choose(event.option.id)

    def _choose(self, choice: str) -> None:
        if choice != "other":
            self.dismiss(choice)
            return
        field = self.query_one("#reason-text", Input)
        field.display = True
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SummaryScreen(Screen[bool]):
    """Shown when the queue is empty; dismissed with True when the teacher goes back."""

    BINDINGS = [Binding("escape,q,enter,space", "app.quit", "Quit", id="summary.quit"),
                Binding("backspace", "back", "Back", id="summary.back")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text, id="summary")
        yield Footer()

    def action_back(self) -> None:
        self.dismiss(True)


class ErrorScreen(ModalScreen[None]):
    """A failure of the rating worker, shown as a message (never a traceback); any key leaves."""

    BINDINGS = [Binding("escape,enter,space,q", "dismiss", "Leave", id="error.leave")]

    def __init__(self, error: BaseException | None) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Static(error_text(self.error), id="error-text")
        yield Footer()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)


def error_text(error: BaseException | None) -> Text:
    if isinstance(error, RaterError):
        return Text.assemble(("Could not go on\n\n", "bold red"), error.message,
                             ("\n\nFix: ", "bold"), error.hint or "-", "\n\nEverything you submitted is saved.")
    return Text.assemble(("This is a bug in rater\n\n", "bold red"), f"{type(error).__name__}: {error}",
                         "\n\nEverything you submitted is saved. Please report this with the message above.")
