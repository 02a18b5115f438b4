"""Blind evaluation sets: drawing distractors from several sources into a fixed order shared by every rater."""

import json
import random
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from rater.core.errors import InputError
from rater.core.text import plural
from rater.store.items import check_split_has_items
from rater.store.tables import Distractor, EvalSet, EvalSlot, Item, RaterRecord, Rating, saved_id


@dataclass
class BuildResult:
    items: int
    slots: int
    left_out: int  # eligible-split items without enough candidates
    asked: int = 0  # items asked for

    def describe(self, name: str) -> str:
        short = (f" Only {plural(self.items, 'item')} of the {self.asked} asked for could be drawn." if self.items <
                 self.asked else "")
        left = f"; {plural(self.left_out, 'item')} left out for lack of candidates" if self.left_out else ""
        return f"Built {name}: {plural(self.items, 'item')}, {plural(self.slots, 'slot')}{left}.{short}"


def draw_slots(by_source: dict[str, list[int]], rng: random.Random, per_item: int, max_per_source: int) -> list[int] | None:
    """`per_item` distractor ids, at most `max_per_source` from any source, in shuffled order; None if impossible."""
    pool = []
    for source in sorted(by_source):
        ids = by_source[source]
        pool.extend(rng.sample(ids, min(len(ids), max_per_source)))
    if len(pool) < per_item:
        return None
    chosen = rng.sample(pool, per_item)
    rng.shuffle(chosen)
    return chosen


def check_build(session: Session, *, name: str, sources: list[str], items: int, per_item: int, max_per_source: int,
                split: str | None) -> None:
    """Every option against what exists: a clear error naming the problem, before anything is drawn."""
    if session.execute(select(col(EvalSet.id)).where(col(EvalSet.name) == name)).first():
        raise InputError(f"An evaluation set named {name!r} exists already.", "choose another name")
    for option, value in (("--items", items), ("--per-item", per_item), ("--max-per-source", max_per_source)):
        if value < 1:
            raise InputError(f"{option} must be 1 or more, got {value}.", f"pass {option} 1 or more")
    if not sources:
        raise InputError("--sources names no source.", "e.g. --sources human,sft,dpo")
    known = set(session.execute(select(col(Distractor.source)).distinct()).scalars())
    unknown = [s for s in sources if s not in known]
    if unknown:
        raise InputError(f"No distractors from source {', '.join(map(repr, unknown))} in this database.",
                         f"sources here: {', '.join(sorted(known)) or 'none (import items first)'}")
    if max_per_source * len(sources) < per_item:
        raise InputError(f"{plural(len(sources), 'source')} with at most {max_per_source} each cannot fill "
                         f"{plural(per_item, 'slot')}.", "add sources or raise --max-per-source")
    check_split_has_items(session, split)


def build_eval_set(session: Session, *, name: str, sources: list[str], items: int = 100, per_item: int = 4,
                   max_per_source: int = 2, split: str | None = "test", seed: int = 0) -> BuildResult:
    check_build(session, name=name, sources=sources, items=items, per_item=per_item, max_per_source=max_per_source,
                split=split)
    query = (select(col(Distractor.item_id), col(Distractor.source), col(Distractor.id)).join(Item, col(Item.id) == col(Distractor.item_id))
             .where(col(Distractor.source).in_(sources)).order_by(col(Distractor.item_id), col(Distractor.id)))
    if split and split != "all":
        query = query.where(col(Item.split) == split)
    candidates: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for item_id, source, distractor_id in session.execute(query):
        candidates[item_id][source].append(distractor_id)
    rng = random.Random(seed)
    chosen: list[tuple[int, list[int]]] = []
    left_out = 0
    for item_id in sorted(candidates):
        if len(chosen) == items:
            break
        slots = draw_slots(candidates[item_id], rng, per_item, max_per_source)
        if slots is None:
            left_out += 1
        else:
            chosen.append((item_id, slots))
    if not chosen:
        raise InputError(f"No item{f' of split {split}' if split and split != 'all' else ''} has {per_item} "
                         f"distractors from {', '.join(sources)} (at most {max_per_source} per source).",
                         "generate or import more distractors, or lower --per-item")
    params = dict(sources=sources, items=items, per_item=per_item, max_per_source=max_per_source, split=split, seed=seed)
    eval_set = EvalSet(name=name, params=json.dumps(params))
    session.add(eval_set)
    session.flush()
    session.add_all(EvalSlot(eval_set_id=saved_id(eval_set), position=p, slot=s, item_id=item_id, distractor_id=d)
                    for p, (item_id, slots) in enumerate(chosen) for s, d in enumerate(slots))
    return BuildResult(len(chosen), len(chosen) * per_item, left_out, items)


def eval_set_progress(session: Session) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """(set name, items, [(rater, items fully rated)]) for every evaluation set, counting only the judgements
    given in the set itself (never ratings from preference rating)."""
    report = []
    for eval_set in session.execute(select(EvalSet).order_by(col(EvalSet.name))).scalars():
        positions: dict[int, set[int]] = defaultdict(set)
        for position, distractor_id in session.execute(select(col(EvalSlot.position), col(EvalSlot.distractor_id))
                                                       .where(col(EvalSlot.eval_set_id) == eval_set.id)):
            positions[position].add(distractor_id)
        rated: dict[str, set[int]] = defaultdict(set)
        for rater, distractor_id in session.execute(select(col(RaterRecord.name), col(Rating.distractor_id))
                                                    .join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
                                                    .where(col(Rating.eval_set_id) == eval_set.id)):
            rated[rater].add(distractor_id)
        done = [(rater, sum(ids <= seen for ids in positions.values())) for rater, seen in sorted(rated.items())]
        report.append((eval_set.name, len(positions), done))
    return report
