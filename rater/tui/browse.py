"""The read-only browse screen: every rater's judgements of an item side by side, with a disagreement filter."""

from rich.text import Text
from sqlalchemy import Engine
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from rater.core.domain import ItemView, Judgement
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
    CSS_PATH = "rater.tcss"
    TITLE = "rater browse"
    BINDINGS = [
        Binding("right,n,space", "move(1)", "Next", key_display="→", id="browse.next"),
        Binding("left,p,backspace", "move(-1)", "Previous", key_display="←", id="browse.previous"),
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

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Vertical(id="main"):
            yield Static(id="question")
            yield Static(id="answer")
            yield DataTable(id="ratings", cursor_type="row", zebra_stripes=True)
            yield Static(id="rationale")
        yield Footer()

    def on_mount(self) -> None:
        self.show()

    def load(self, item_id: int) -> tuple[ItemView, dict]:
        with session_scope(self.engine) as session:
            view = self.set_views.get(item_id) or item_views(session, item_ids=[item_id], where=self.where)[0]
            return view, item_ratings(session, item_id=item_id, rater_names=self.rater_names,
                                      eval_set_id=self.eval_set_id)

    def show(self) -> None:
        status = self.query_one("#status", Static)
        if not self.ids:
            status.update("No rated items match." + (" (disagreements only)" if self.only_disagreements else ""))
            self.query_one(DataTable).clear(columns=True)
            return
        view, cells = self.load(self.ids[self.index])
        self.cells = cells
        raters = sorted({name for by_rater in cells.values() for name in by_rater})
        filter_note = "   disagreements only" if self.only_disagreements else ""
        status.update(Text.assemble((f"{self.index + 1} / {len(self.ids)}", "bold"), f"   rated items{filter_note}"))
        self.query_one("#question", Static).update(Text(view.question, style="bold"))
        self.query_one("#answer", Static).update(Text.assemble(("Answer: ", "bold green"), view.answer))
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("#", "distractor", "source", *raters)
        for number, d in enumerate(view.distractors, 1):
            by_rater = cells.get(d.id, {})
            table.add_row(str(number), d.text, d.source, *(cell_text(by_rater.get(r)) for r in raters), key=str(d.id))
        self.show_rationale(0)

    def show_rationale(self, row: int) -> None:
        panel = self.query_one("#rationale", Static)
        table = self.query_one(DataTable)
        if not table.row_count:
            panel.update("")
            return
        key = table.coordinate_to_cell_key((row, 0)).row_key.value
        notes = [f"{name}: {cell.rationale}" for name, cell in sorted(self.cells.get(int(key), {}).items())
                 if cell.rationale]
        panel.update(Text("\n".join(notes) or "No rationale for this distractor.", style="dim"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_rationale(event.cursor_row)

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


def build_browse_app(engine: Engine, *, rater_names: list[str] = (), where: ItemFilter = ItemFilter(),
                     eval_set: str | None = None) -> BrowseApp:
    return BrowseApp(engine, rater_names=list(rater_names), where=where, eval_set=eval_set)
