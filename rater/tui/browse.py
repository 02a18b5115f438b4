"""The read-only browse screen: every rater's judgements of an item side by side, with a disagreement filter."""

from typing import Sequence

from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from rater.core.domain import ItemView, Judgement
from rater.core.text import plural
from rater.store.engine import session_scope
from rater.store.items import ItemFilter, eval_set_views, item_views
from rater.store.ratings import disagreement_item_ids, eval_set_id_of, item_ratings, rated_item_ids
from rater.tui.widgets import reason_label


def cell_text(cell: Judgement | None) -> Text:
    if cell is None:
        return Text("-", style="dim")
    mark = Text("✓ accept", style="bold green") if cell.accepted else Text("✗ reject", style="bold red")
    if cell.score is not None:
        limit = f" > {cell.limit:.2f}" if cell.limit is not None else ""
        mark.append(f"  {cell.score:g}{limit}")
    if cell.reason:
        mark.append(f"  ({reason_label(cell.reason)})", style="italic")
    return mark


class BrowseApp(App[None]):
    """One item at a time: each distractor with one line per rater under it (any number of raters fits, and long
    texts wrap); the body scrolls with ↑ ↓, and → ← move between items whatever has focus."""

    CSS_PATH = "rater.tcss"
    TITLE = "rater browse"
    BINDINGS = [
        Binding("right,n,space", "move(1)", "Next", key_display="→", priority=True, id="browse.next"),
        Binding("left,p,backspace", "move(-1)", "Previous", key_display="←", priority=True, id="browse.previous"),
        Binding("d", "disagreements", "Disagreements only", id="browse.disagreements"),
        Binding("escape,q", "quit", "Quit", key_display="esc", id="browse.quit"),
    ]

    def __init__(self, engine: Engine, *, rater_names: list[str], where: ItemFilter, eval_set: str | None) -> None:
        super().__init__()
        self.engine, self.rater_names, self.where = engine, rater_names, where
        with session_scope(engine) as session:
            self.eval_set_id = eval_set_id_of(session, eval_set)  # a set's own judgements, else preference rating
            self.all_ids = rated_item_ids(session, rater_names=rater_names, where=where, eval_set_id=self.eval_set_id)
            self.set_views = ({v.id: v for v in eval_set_views(session, eval_set_id=self.eval_set_id)}
                              if self.eval_set_id is not None else {})
        self.ids = self.all_ids
        self.index = 0
        self.only_disagreements = False
        self.raters: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with VerticalScroll(id="browse-body"):
            yield Static(id="question")
            yield Static(id="answer")
            yield Static(id="ratings")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#browse-body").focus()
        self.show()

    def load(self, item_id: int) -> tuple[ItemView, dict]:
        with session_scope(self.engine) as session:
            view = self.set_views.get(item_id) or item_views(session, item_ids=[item_id], where=self.where)[0]
            return view, item_ratings(session, item_id=item_id, rater_names=self.rater_names,
                                      eval_set_id=self.eval_set_id)

    def show(self) -> None:
        status = self.query_one("#status", Static)
        if not self.ids:
            status.update("No rated items match." + (" (disagreements only: press d for all)"
                                                     if self.only_disagreements else ""))
            for part in ("#question", "#answer", "#ratings"):
                self.query_one(part, Static).update("")
            self.raters = []
            return
        view, cells = self.load(self.ids[self.index])
        self.raters = sorted({name for by_rater in cells.values() for name in by_rater})
        filter_note = "   disagreements only" if self.only_disagreements else ""
        status.update(Text.assemble((f"{self.index + 1} / {len(self.ids)}", "bold"),
                                    f"   rated items{filter_note}   {plural(len(self.raters), 'rater')}"))
        self.query_one("#question", Static).update(Text(view.question, style="bold"))
        self.query_one("#answer", Static).update(Text.assemble(("Answer: ", "bold green"), view.answer))
        self.query_one("#ratings", Static).update(ratings_table(view, cells, self.raters))
        self.query_one("#browse-body", VerticalScroll).scroll_home(animate=False)

    def action_move(self, step: int) -> None:
        if self.ids:
            self.index = max(0, min(len(self.ids) - 1, self.index + step))
            self.show()

    def action_disagreements(self) -> None:
        self.only_disagreements = not self.only_disagreements
        if self.only_disagreements:
            with session_scope(self.engine) as session:
                self.ids = disagreement_item_ids(session, item_ids=self.all_ids, rater_names=self.rater_names,
                                                 eval_set_id=self.eval_set_id)
        else:
            self.ids = self.all_ids
        self.index = 0
        self.show()


def ratings_table(view: ItemView, cells: dict[int, dict[str, Judgement]], raters: list[str]) -> Table:
    """Every distractor of the item with one line per rater (their judgement, then their rationale, dimmed)."""
    table = Table(expand=True, show_lines=True)
    table.add_column("#", width=3, justify="right")
    table.add_column("distractor", ratio=2, overflow="fold")
    table.add_column("source", no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column("judgements", ratio=4, overflow="fold")
    for number, d in enumerate(view.distractors, 1):
        by_rater = cells.get(d.id, {})
        lines = Text()
        for rater in raters:
            cell = by_rater.get(rater)
            lines.append(f"{rater}: ", style="bold")
            lines.append_text(cell_text(cell))
            if cell is not None and cell.rationale:
                lines.append(f"\n  {cell.rationale}", style="dim")
            lines.append("\n")
        lines.rstrip()
        table.add_row(str(number), d.text, d.source, lines)
    return table


def build_browse_app(engine: Engine, *, rater_names: Sequence[str] = (), where: ItemFilter = ItemFilter(),
                     eval_set: str | None = None) -> BrowseApp:
    return BrowseApp(engine, rater_names=list(rater_names), where=where, eval_set=eval_set)
