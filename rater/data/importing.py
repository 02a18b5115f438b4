"""Writing parsed files into the store: idempotent (nothing is added twice) and atomic (all files or none)."""

import json
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session, col

from rater.core.domain import Judgement
from rater.core.errors import InputError
from rater.data.records import ImportBatch, NewDistractor
from rater.store.items import in_chunks, item_key, sha256
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.study import recount_need
from rater.store.tables import Context, Distractor, EvalSet, EvalSlot, Item, Rating, saved_id


@dataclass
class ImportCounts:
    records: int = 0
    added: Counter = field(default_factory=Counter)  # contexts, items, distractors, ratings, eval slots


class _Ingest:
    """One batch's writes, with lookups of what exists so re-imports add nothing."""

    def __init__(self, session: Session, batch: ImportBatch) -> None:
        self.session = session
        self.batch = batch
        self.added: Counter = Counter()
        self.contexts: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.distractors: dict[tuple[int, str, str], int] = {}
        self.positions: Counter = Counter()  # next position per (item, source)

    def run(self) -> Counter:
        self._load_existing()
        self._add_contexts()
        item_ids = self._add_items()  # created even when they have no distractors yet
        slots = self._add_distractors(item_ids)
        if self.batch.rater_name:
            self._ratings(slots)
        if self.batch.eval_set:
            self._eval_set(slots)
        return self.added

    def _rows_in(self, columns, column, values) -> list:
        """Rows whose `column` is in `values`, asked in chunks: SQLite caps the parameters of one query."""
        rows: list = []
        for chunk in in_chunks(values):
            rows += self.session.execute(select(*columns).where(column.in_(chunk))).all()
        return rows

    def _load_existing(self) -> None:
        shas = {sha256(i.context) for i in self.batch.items}
        self.contexts = dict(self._rows_in((col(Context.sha256), col(Context.id)), col(Context.sha256), shas))
        keys = {item_key(i.context, i.question, i.answer) for i in self.batch.items}
        self.items = dict(self._rows_in((col(Item.key), col(Item.id)), col(Item.key), keys))
        rows = self._rows_in((col(Distractor.item_id), col(Distractor.source), col(Distractor.key), col(Distractor.id)),
                             col(Distractor.item_id), self.items.values())
        self.distractors = {(r[0], r[1], r[2]): r[3] for r in rows}
        self.positions.update((item_id, source) for item_id, source, _ in self.distractors)

    # Three passes with one flush each: a row at a time would cost a round trip per row.

    def _add_contexts(self) -> None:
        new = {}
        for item in self.batch.items:
            sha = sha256(item.context)
            if sha not in self.contexts and sha not in new:
                new[sha] = Context(text=item.context, sha256=sha)
        self._flush(new, "contexts", self.contexts)

    def _add_items(self) -> list[int]:
        keys = [item_key(i.context, i.question, i.answer) for i in self.batch.items]
        new = {}
        for key, item in zip(keys, self.batch.items):
            if key not in self.items and key not in new:
                new[key] = Item(context_id=self.contexts[sha256(item.context)], question=item.question,
                                answer=item.answer, split=item.split, file_split=item.split,
                                dataset=self.batch.dataset, record=item.record, key=key)
        self._flush(new, "items", self.items)
        return [self.items[key] for key in keys]

    def _add_distractors(self, item_ids: list[int]) -> list[list[tuple[int, int, NewDistractor]]]:
        new = {}
        for item_id, item in zip(item_ids, self.batch.items):
            for d in item.distractors:
                key = (item_id, d.source, sha256(d.text))
                if key not in self.distractors and key not in new:
                    new[key] = Distractor(item_id=item_id, source=d.source, text=d.text, key=key[2],
                                          position=self.positions[item_id, d.source])
                    self.positions[item_id, d.source] += 1
        self._flush(new, "distractors", self.distractors)
        return [[(item_id, self.distractors[item_id, d.source, sha256(d.text)], d) for d in item.distractors]
                for item_id, item in zip(item_ids, self.batch.items)]

    def _flush(self, new: dict, label: str, ids: dict) -> None:
        self.session.add_all(new.values())
        self.session.flush()
        ids.update((key, row.id) for key, row in new.items())
        if new:
            self.added[label] += len(new)

    def _ratings(self, slots) -> None:
        assert self.batch.rater_name is not None  # (only batches that carry ratings come here)
        rater_id = saved_id(get_or_create_rater(self.session, name=self.batch.rater_name, kind=self.batch.rater_kind,
                                                settings={"imported_from": self.batch.format}))
        done = set(self.session.execute(select(col(Rating.distractor_id)).where(col(Rating.rater_id) == rater_id))
                   .scalars())
        for item_slots in slots:
            judgements = [Judgement(d_id, new.accepted, score=new.score, rationale=f"imported from {self.batch.format}")
                          for _, d_id, new in item_slots if new.accepted is not None and d_id not in done]
            if judgements:
                save_judgements(self.session, rater_id=rater_id, item_id=item_slots[0][0], judgements=judgements)
                self.added["ratings"] += len(judgements)
        recount_need(self.session, [item_slots[0][0] for item_slots in slots if item_slots])

    def _eval_set(self, slots) -> None:
        wanted = [(p, s, item_id, d_id) for p, item_slots in enumerate(slots)
                  for s, (item_id, d_id, _) in enumerate(item_slots)]
        existing = self.session.execute(select(EvalSet).where(col(EvalSet.name) == self.batch.eval_set)).scalars().first()
        if existing is not None:
            have = self.session.execute(select(col(EvalSlot.position), col(EvalSlot.slot), col(EvalSlot.item_id),
                                               col(EvalSlot.distractor_id)).where(col(EvalSlot.eval_set_id) == existing.id)
                                        .order_by(col(EvalSlot.position), col(EvalSlot.slot))).all()
            if [tuple(r) for r in have] != wanted:
                raise InputError(f"An evaluation set named {self.batch.eval_set!r} exists with other contents.",
                                 "pass --dataset with a new name")
            return
        assert self.batch.eval_set is not None  # (only batches that keep an order come here)
        eval_set = EvalSet(name=self.batch.eval_set, params=json.dumps({"imported_from": self.batch.path}))
        self.session.add(eval_set)
        self.session.flush()
        self.session.add_all(EvalSlot(eval_set_id=saved_id(eval_set), position=p, slot=s, item_id=i, distractor_id=d)
                             for p, s, i, d in wanted)
        self.added["eval slots"] += len(wanted)


def ingest(session: Session, *, batches: list[ImportBatch]) -> ImportCounts:
    """Write every batch in the caller's transaction; the caller commits once, so a failure leaves nothing."""
    counts = ImportCounts()
    for batch in batches:
        counts.records += batch.records
        counts.added.update(_Ingest(session, batch).run())
    return counts
