"""`rater db stats`: counts per dataset, split, source and rater."""

import typer
from rich.table import Table
from sqlalchemy import Integer, cast, func, select
from sqlmodel import col

from rater.cli import app
from rater.store.engine import safe_url, session_scope
from rater.store.study import Study
from rater.store.tables import Distractor, EvalSet, Item, RaterRecord, Rating

db_app = typer.Typer(help="Inspect the database.")


app.add_typer(db_app, name="db")


def _table(title: str, header: tuple[str, ...], rows) -> Table:
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="left" if name == header[0] else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


@db_app.command("stats")
def db_stats(ctx: typer.Context) -> None:
    """Counts per dataset, split, source and rater, with acceptance rates."""
    console = ctx.obj.console
    with session_scope(ctx.obj.engine) as session:
        console.print(f"Database: {safe_url(ctx.obj.url)}")
        console.print(_table("Items per dataset and split", ("dataset", "split", "items"), session.execute(
            select(col(Item.dataset), func.coalesce(col(Item.split), "-"), func.count()).group_by(col(Item.dataset), col(Item.split))
            .order_by(col(Item.dataset), col(Item.split)))))
        console.print(_table("Distractors per source", ("source", "distractors"), session.execute(
            select(col(Distractor.source), func.count()).group_by(col(Distractor.source)).order_by(col(Distractor.source)))))
        rows = session.execute(select(col(RaterRecord.name), col(RaterRecord.kind), func.count(col(Rating.id)), func.sum(cast(col(Rating.accepted), Integer)))
                               .join(Rating, col(Rating.rater_id) == col(RaterRecord.id), isouter=True).group_by(col(RaterRecord.id))
                               .order_by(col(RaterRecord.name))).all()
        console.print(_table("Ratings per rater", ("rater", "kind", "ratings", "accepted"),
                             [(n, k, c, f"{(a or 0) / c:.1%}" if c else "-") for n, k, c, a in rows]))
        _shared_work(console, session)


def _shared_work(console, session) -> None:
    """Work shared out with an overlap: items each teacher has rated, and items still lacking K ratings."""
    studies = [("preference rating", None), *session.execute(select(col(EvalSet.name), col(EvalSet.id))
                                                              .where(col(EvalSet.overlap).is_not(None))
                                                              .order_by(col(EvalSet.name))).all()]
    for name, eval_set_id in studies:
        progress = Study(eval_set_id).progress(session)
        if progress is None:
            continue
        console.print(_table(f"Shared out ({name}): {progress.summary}", ("teacher", "items rated"),
                             progress.by_teacher.items()))
