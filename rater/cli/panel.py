"""`rater panel create|list`: raters that combine several judges' judgements (rater/evaluation/panels.py)."""

import typer

from rater.cli import app
from rater.core.text import plural
from rater.evaluation.panels import RULES, create_panel, delete_panel, panels, refresh_panels
from rater.store.engine import session_scope

panel_app = typer.Typer(help="Panels: one rater from several judges' judgements (majority or mean score).")
app.add_typer(panel_app, name="panel")


@panel_app.command("create")
def panel_create(ctx: typer.Context, name: str = typer.Argument(..., help="The panel's name, used like any rater's."),
                 judges: str = typer.Option(..., "--judges", help="Its members, comma-separated: judges, rules or "
                                                                  "other panels (at least two)."),
                 rule: str = typer.Option("majority", help=f"{' or '.join(RULES)}: the members' majority, or their "
                                                           "mean score against the acceptance rule.")) -> None:
    """Define a panel and give it a label for every distractor all its members have rated."""
    with session_scope(ctx.obj.engine) as session:
        panel = create_panel(session, name, judges.split(","), rule)
        labels = refresh_panels(session, [panel])[panel.name]
    ctx.obj.console.print(f"Panel {panel.name}: {panel.describe()}; {plural(labels, 'distractor')} labelled so far "
                          "(it follows its members as they rate more).")


@panel_app.command("delete")
def panel_delete(ctx: typer.Context, name: str = typer.Argument(..., help="The panel to remove.")) -> None:
    """Remove a panel and its labels (its members' ratings stay)."""
    with session_scope(ctx.obj.engine) as session:
        removed = delete_panel(session, name)
    ctx.obj.console.print(f"Panel {name} removed, with its {plural(removed, 'label')}.")


@panel_app.command("list")
def panel_list(ctx: typer.Context) -> None:
    """The panels and their members."""
    with session_scope(ctx.obj.engine) as session:
        found = panels(session)
    for panel in found:
        ctx.obj.console.print(f"{panel.name}: {panel.describe()}")
    if not found:
        ctx.obj.console.print("No panels yet: `rater panel create NAME --judges a,b,c`.")
