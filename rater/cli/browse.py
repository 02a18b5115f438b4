"""`rater browse`: every rater's judgements of an item, read-only."""

from typing import List, Optional

import typer

from rater.cli import app
from rater.core.errors import InputError
from rater.store.engine import session_scope
from rater.store.items import ItemFilter, check_sources
from rater.store.ratings import check_raters, eval_set_id_of, rated_item_ids


@app.command()
def browse(ctx: typer.Context,
           rater: List[str] = typer.Option([], help="Show only these raters (default: all)."),
           set_name: Optional[str] = typer.Option(None, "--set", help="Only items of this evaluation set."),
           source: List[str] = typer.Option([], help="Only distractors from these sources.")) -> None:
    """Page through rated items with every rater's judgements side by side (d: disagreements only)."""
    from rater.tui.browse import build_browse_app

    where = ItemFilter(tuple(source))
    with session_scope(ctx.obj.engine) as session:
        check_raters(session, rater)
        check_sources(session, source)
        eval_set_id = eval_set_id_of(session, set_name)
        matching = rated_item_ids(session, rater_names=rater, where=where, eval_set_id=eval_set_id)
        anything = matching or rated_item_ids(session, eval_set_id=eval_set_id)
    scope = f"evaluation set {set_name}" if set_name else "preference rating"
    if not anything:
        ctx.obj.console.print(f"Nothing is rated yet in {scope}: there is nothing to browse.")
        return
    if not matching:
        raise InputError(f"No rated items in {scope} match the --rater and --source given.",
                         "`rater browse` without them shows everything rated")
    build_browse_app(ctx.obj.engine, rater_names=rater, where=where, eval_set=set_name).run()
