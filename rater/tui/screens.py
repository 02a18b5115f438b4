"""Modal and end screens: instructions, rejection reasons, the teacher's history, the summary and errors. Every
text comes from the catalog in the teacher's language."""

from typing import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from rater.core import paths
from rater.core.domain import ItemView, Reason
from rater.core.errors import RaterError
from rater.core.texts import Texts
from rater.store.ratings import RatedItem


def instructions_text(name: str) -> str:
    return paths.instructions_text(name)


def in_language(screen: type, texts: Texts, *bindings: tuple[str, str, str, str]) -> type:
    """`screen` with its keys described in the teacher's language: (keys, action, catalog key, binding id)."""
    return type(f"{screen.__name__}_{texts.language}", (screen,), {
        "BINDINGS": [Binding(keys, action, texts.say(description), id=binding_id,
                             key_display="esc" if keys.startswith("escape") else None)
                     for keys, action, description, binding_id in bindings],
        "__module__": screen.__module__})


class InstructionsScreen(ModalScreen[None]):
    """The rater instructions, Swedish then English; any of the bindings closes it."""

    BINDINGS = [Binding("escape,question_mark,enter,space,q", "dismiss", "Close", id="instructions.close")]

    @staticmethod
    def make(document: str, texts: Texts) -> "InstructionsScreen":
        return in_language(InstructionsScreen, texts, ("escape,question_mark,enter,space,q", "dismiss", "close",
                                                       "instructions.close"))(document)

    def __init__(self, document: str) -> None:
        super().__init__()
        self.document = document

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="instructions"):
            yield Markdown(instructions_text(self.document))
        yield Footer()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)


class FlagScreen(ModalScreen[str | None]):
    """Flag the item on screen as broken, with an optional note: Enter flags, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="flag.cancel")]

    @staticmethod
    def make(question: str, texts: Texts) -> "FlagScreen":
        return in_language(FlagScreen, texts, ("escape", "cancel", "cancel", "flag.cancel"))(question, texts)

    def __init__(self, question: str, texts: Texts) -> None:
        super().__init__()
        self.question, self.texts = question, texts

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-box"):
            yield Static(Text.assemble(self.texts.say("flag_prompt") + "\n", (self.question, "italic")),
                         id="reason-title")
            yield Input(placeholder=self.texts.say("reason_input"), id="flag-note")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())  # "" flags without a note

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReasonScreen(ModalScreen[str | None]):
    """Pick why a distractor is rejected: one of the five reasons, or free text. Esc cancels the reason only."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel")]

    @staticmethod
    def make(number: int, text: str, texts: Texts) -> "ReasonScreen":
        return in_language(ReasonScreen, texts, ("escape", "cancel", "cancel", "reason.cancel"))(number, text, texts)

    def __init__(self, number: int, text: str, texts: Texts) -> None:
        super().__init__()
        self.number, self.text, self.texts = number, text, texts

    def compose(self) -> ComposeResult:
        say = self.texts.say
        with Vertical(id="reason-box"):
            yield Static(Text.assemble(say("reason_title", number=self.number) + "\n", (self.text, "italic")),
                         id="reason-title")
            options = [Option(f"{n}  {self.texts.reason(reason.value)}", id=reason.value)
                       for n, reason in enumerate(Reason, 1)]
            yield OptionList(*options, Option(f"6  {say('reason_other')}", id="other"), id="reason-list")
            yield Input(placeholder=say("reason_input"), id="reason-text")

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


class HistoryScreen(ModalScreen[int | None]):
    """The teacher's own rated items, latest first, with the question, when, and how many were accepted; typing
    filters by text, Enter opens one (it is presented again to be changed), Esc closes. Never a source."""

    BINDINGS = [Binding("escape", "close", "Close", id="history.close")]

    @staticmethod
    def make(load: Callable[[str], list[RatedItem]], texts: Texts) -> "HistoryScreen":
        return in_language(HistoryScreen, texts, ("escape", "close", "close", "history.close"))(load, texts)

    def __init__(self, load: Callable[[str], list[RatedItem]], texts: Texts) -> None:
        super().__init__()
        self.load, self.texts = load, texts

    def compose(self) -> ComposeResult:
        say = self.texts.say
        with Vertical(id="history-box"):
            yield Static(Text(say("history_title"), style="bold"))
            yield Input(placeholder=say("history_filter"), id="history-filter")
            yield OptionList(id="history-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history-filter").focus()
        self._reload("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._reload(event.value)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        found = self.query_one(OptionList)
        if found.option_count:
            found.highlighted = found.highlighted or 0
            found.focus()

    def _reload(self, text: str) -> None:
        self.run_worker(lambda: self.load(text), thread=True, group="history", exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event) -> None:
        if event.worker.group == "history" and event.state.name == "SUCCESS":
            self.show(event.worker.result)

    def show(self, rows: list[RatedItem]) -> None:
        found = self.query_one(OptionList)
        found.clear_options()
        if not rows:
            found.add_option(Option(self.texts.say("history_empty"), disabled=True))
            return
        found.add_options(Option(self.texts.say("history_row", when=f"{row.saved_at:%Y-%m-%d %H:%M}",
                                                accepted=row.accepted, rated=row.rated, question=row.question),
                                 id=str(row.item_id)) for row in rows)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_close(self) -> None:
        self.dismiss(None)


class SummaryScreen(Screen[int | str | None]):
    """Shown when nothing is left to rate; lists items skipped twice (Enter opens one). Dismissed with an item id
    (open it), "back" (go back), "history", or None (leave)."""

    BINDINGS = [Binding("escape,q", "leave", "Leave", key_display="esc", id="summary.leave"),
                Binding("backspace", "back", "Back", id="summary.back"),
                Binding("h", "history", "History", id="summary.history")]

    @staticmethod
    def make(text: str, left: Sequence[ItemView], texts: Texts) -> "SummaryScreen":
        return in_language(SummaryScreen, texts, ("escape,q", "leave", "leave", "summary.leave"),
                           ("backspace", "back", "back", "summary.back"),
                           ("h", "history", "history", "summary.history"))(text, left, texts)

    def __init__(self, text: str, left: Sequence[ItemView], texts: Texts) -> None:
        super().__init__()
        self.text, self.left, self.texts = text, left, texts

    def compose(self) -> ComposeResult:
        yield Static(self.text, id="summary")
        if self.left:
            yield Static(self.texts.say("left_skipped", n=len(self.left)), id="summary-left")
            yield OptionList(*[Option(item.question, id=str(item.id)) for item in self.left], id="left-list")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_leave(self) -> None:
        self.dismiss(None)

    def action_back(self) -> None:
        self.dismiss("back")

    def action_history(self) -> None:
        self.dismiss("history")


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
