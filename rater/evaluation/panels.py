"""Panels: a rater whose judgement of a distractor combines its members' (judges, rules, other panels). Rule
`majority`: accepted when more than half of the members accepted (an even split gives no label); rule `mean`: the
members' mean score against the acceptance rule (the study's weighted limit, SPEC). A distractor gets the panel's
label once every member has rated it.

The panel's labels are stored as ratings of its own rater (kind `panel`), so the report, calibration, the agreement
gate and the exports treat it like any rater; `refresh_panels` brings them up to date with the members' ratings and
runs at the start of each of those commands, so a panel follows its members as they rate more."""

import json
from collections import defaultdict
from dataclasses import dataclass
from statistics import mean

from sqlalchemy import delete, select
from sqlmodel import Session, col

from rater.core.domain import Judgement, RaterKind
from rater.core.errors import InputError
from rater.judge.scoring import Acceptance
from rater.store.items import in_chunks
from rater.store.ratings import get_or_create_rater, save_many_judgements
from rater.store.tables import RaterRecord, Rating, RatingHistory, rating_scope, saved_id

RULES = ("majority", "mean")
SAVE_ITEMS = 1000  # items' labels saved per statement group


@dataclass(frozen=True)
class Panel:
    name: str
    members: tuple[str, ...]
    rule: str

    def describe(self) -> str:
        return f"{self.rule} of {', '.join(self.members)}"


def panels(session: Session) -> list[Panel]:
    rows = session.execute(select(col(RaterRecord.name), col(RaterRecord.settings))
                           .where(col(RaterRecord.kind) == RaterKind.panel).order_by(col(RaterRecord.name))).all()
    return [Panel(name, tuple(json.loads(settings)["members"]), json.loads(settings)["rule"]) for name, settings in rows]


def create_panel(session: Session, name: str, members: list[str], rule: str) -> Panel:
    """Define the panel (a new name), checked: known non-teacher members, at least two, not itself."""
    name = name.strip()
    if not name:
        raise InputError("A panel needs a name.", "e.g. `rater panel create jury --judges a,b,c`")
    if rule not in RULES:
        raise InputError(f"Unknown panel rule {rule!r}.", f"use one of: {', '.join(RULES)}")
    members = [m.strip() for m in members if m.strip()]
    if name in members:
        raise InputError(f"The panel {name} cannot be one of its own members.", "name its members with --judges")
    if len(set(members)) < 2 or len(set(members)) != len(members):
        raise InputError("A panel needs at least two different members.", "e.g. --judges gpt-4o,llama,mistral")
    kinds = dict(session.execute(select(col(RaterRecord.name), col(RaterRecord.kind))
                                 .where(col(RaterRecord.name).in_(members + [name]))).all())
    if name in kinds:
        raise InputError(f"A rater named {name} exists already.", "choose another name for the panel")
    unknown = [m for m in members if m not in kinds]
    if unknown:
        known = session.execute(select(col(RaterRecord.name)).where(col(RaterRecord.kind) != RaterKind.human)
                                .order_by(col(RaterRecord.name))).scalars().all()
        raise InputError(f"No rater named {', '.join(unknown)}.", f"judges and rules here: {', '.join(known) or 'none'}")
    teachers = [m for m in members if kinds[m] == RaterKind.human]
    if teachers:
        raise InputError(f"{', '.join(teachers)} {'is a teacher' if len(teachers) == 1 else 'are teachers'}: a panel "
                         "combines judges and rules, which the teachers are the measure of.",
                         "name judges or rules with --judges")
    if rule == "mean":
        other = [m for m in members if kinds[m] != RaterKind.llm]
        if other:
            raise InputError(f"The mean rule averages LLM judges' 1-5 scores, and {', '.join(other)} "
                             f"{'is not an LLM judge' if len(other) == 1 else 'are not LLM judges'}.",
                             "use --rule majority, or name LLM judges only")
    get_or_create_rater(session, name=name, kind=RaterKind.panel, settings={"members": members, "rule": rule})
    panel = Panel(name, tuple(members), rule)
    refresh_panels(session, [panel])
    return panel


def delete_panel(session: Session, name: str) -> int:
    """Remove a panel and its labels; how many labels went. Not a panel (or a panel another panel has as a
    member): an error."""
    found = {p.name: p for p in panels(session)}
    if name not in found:
        raise InputError(f"No panel named {name}.", f"panels here: {', '.join(found) or 'none'}")
    users = [p.name for p in found.values() if name in p.members]
    if users:
        raise InputError(f"The panel {name} is a member of {', '.join(users)}.", "delete those panels first")
    rater_id = session.execute(select(col(RaterRecord.id)).where(col(RaterRecord.name) == name)).scalar_one()
    removed = _drop_labels(session, rater_id, None)
    session.execute(delete(RaterRecord).where(col(RaterRecord.id) == rater_id))
    return removed


def _drop_labels(session: Session, rater_id: int, keep: set[int] | None) -> int:
    """Delete this panel's labels (and their history), but those of the distractors in `keep`."""
    ids = [rating_id for rating_id, distractor_id in session.execute(
        select(col(Rating.id), col(Rating.distractor_id)).where(col(Rating.rater_id) == rater_id))
        if keep is None or distractor_id not in keep]
    for chunk in in_chunks(ids):
        session.execute(delete(RatingHistory).where(col(RatingHistory.rating_id).in_(chunk)))
        session.execute(delete(Rating).where(col(Rating.id).in_(chunk)))
    return len(ids)


def _members_first(found: list[Panel]) -> list[Panel]:
    """Panels in an order where a panel that is a member of another comes before it."""
    by_name, ordered, seen = {p.name: p for p in found}, [], set()

    def visit(panel: Panel) -> None:
        if panel.name in seen:
            return
        seen.add(panel.name)
        for member in panel.members:
            if member in by_name:
                visit(by_name[member])
        ordered.append(panel)
    for panel in found:
        visit(panel)
    return ordered


def refresh_panels(session: Session, only: list[Panel] | None = None) -> dict[str, int]:
    """Store each panel's labels for every distractor all its members have rated (preference rating): labels
    that changed are replaced (with their history), labels the members no longer give (an even split now) are
    removed. Panels that are members of others come first. Returns the labels each panel now has."""
    counts = {}
    for panel in _members_first(panels(session) if only is None else only):
        ids = dict(session.execute(select(col(RaterRecord.name), col(RaterRecord.id))
                                   .where(col(RaterRecord.name).in_(list(panel.members) + [panel.name]))).all())
        if len(ids) < len(panel.members) + 1:
            continue  # a member was removed from the database: nothing to combine
        labels: dict[int, dict[int, tuple[bool, float | None]]] = defaultdict(dict)
        items: dict[int, int] = {}
        for distractor_id, item_id, rater_id, accepted, score in session.execute(
                select(col(Rating.distractor_id), col(Rating.item_id), col(Rating.rater_id), col(Rating.accepted),
                       col(Rating.score)).where(rating_scope(None),
                                                col(Rating.rater_id).in_([ids[m] for m in panel.members]))):
            labels[distractor_id][rater_id] = (bool(accepted), score)
            items[distractor_id] = item_id
        complete = {d: v for d, v in labels.items() if len(v) == len(panel.members)}
        by_item: dict[int, list[Judgement]] = defaultdict(list)
        if panel.rule == "majority":
            for d, votes in complete.items():
                yes = sum(a for a, _ in votes.values())
                if 2 * yes != len(votes):
                    by_item[items[d]].append(Judgement(d, 2 * yes > len(votes), score=yes / len(votes),
                                                       rationale=f"panel: {yes} of {len(votes)} members accepted"))
        else:
            means = {d: mean(s for _, s in votes.values() if s is not None) for d, votes in complete.items()
                     if all(s is not None for _, s in votes.values())}
            per_item: dict[int, list[int]] = defaultdict(list)
            for d in means:
                per_item[items[d]].append(d)
            acceptance = Acceptance()
            for item_id, ds in per_item.items():
                limit = acceptance.limit([means[d] for d in ds])
                by_item[item_id] += [Judgement(d, means[d] > limit, score=means[d], limit=limit,
                                               rationale="panel: the members' mean score") for d in ds]
        panel_id = saved_id(get_or_create_rater(session, name=panel.name, kind=RaterKind.panel))
        _drop_labels(session, panel_id, {j.distractor_id for js in by_item.values() for j in js})
        ordered = sorted(by_item.items())
        for start in range(0, len(ordered), SAVE_ITEMS):  # a few thousand distractors per IN list, as SQLite takes
            save_many_judgements(session, rater_id=panel_id, eval_set_id=None, items=ordered[start:start + SAVE_ITEMS])
        counts[panel.name] = sum(len(v) for v in by_item.values())
    return counts
