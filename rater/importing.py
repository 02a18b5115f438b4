"""Writing parsed files into the store: idempotent (nothing is added twice) and atomic (all files or none)."""

import json
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from rater.domain import Judgement
from rater.errors import InputError
from rater.models import Context, Distractor, EvalSet, EvalSlot, Item, Rating
from rater.records import ImportBatch
from rater.store import get_or_create_rater, item_key, save_judgements, sha256


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
        slots = []
        for new in self.batch.items:
            item_id = self._item(new)  # created even when it has no distractors yet
            slots.append([self._distractor(item_id, d) for d in new.distractors])
        self.session.flush()
        if self.batch.rater_name:
            self._ratings(slots)
        if self.batch.eval_set:
            self._eval_set(slots)
        return self.added

    def _load_existing(self) -> None:
        shas = {sha256(i.context) for i in self.batch.items}
        for sha, cid in self.session.execute(select(Context.sha256, Context.id).where(Context.sha256.in_(shas))):
            self.contexts[sha] = cid
        keys = {item_key(i.context, i.question, i.answer) for i in self.batch.items}
        for key, iid in self.session.execute(select(Item.key, Item.id).where(Item.key.in_(keys))):
            self.items[key] = iid
        if self.items:
            rows = self.session.execute(select(Distractor.item_id, Distractor.source, Distractor.key, Distractor.id)
                                        .where(Distractor.item_id.in_(list(self.items.values()))))
            self.distractors = {(r[0], r[1], r[2]): r[3] for r in rows}
            self.positions.update((item_id, source) for item_id, source, _ in self.distractors)

    def _context(self, text: str) -> int:
        sha = sha256(text)
        if sha not in self.contexts:
            context = Context(text=text, sha256=sha)
            self.session.add(context)
            self.session.flush()
            self.contexts[sha] = context.id
            self.added["contexts"] += 1
        return self.contexts[sha]

    def _item(self, new) -> int:
        key = item_key(new.context, new.question, new.answer)
        if key not in self.items:
            item = Item(context_id=self._context(new.context), question=new.question, answer=new.answer,
                        split=new.split, dataset=self.batch.dataset, record=new.record, key=key)
            self.session.add(item)
            self.session.flush()
            self.items[key] = item.id
            self.added["items"] += 1
        return self.items[key]

    def _distractor(self, item_id: int, new) -> tuple[int, int, object]:
        key = (item_id, new.source, sha256(new.text))
        if key not in self.distractors:
            distractor = Distractor(item_id=item_id, source=new.source, text=new.text, key=key[2],
                                    position=self.positions[item_id, new.source])
            self.positions[item_id, new.source] += 1
            self.session.add(distractor)
            self.session.flush()
            self.distractors[key] = distractor.id
            self.added["distractors"] += 1
        return item_id, self.distractors[key], new

    def _ratings(self, slots) -> None:
        rater = get_or_create_rater(self.session, name=self.batch.rater_name, kind=self.batch.rater_kind,
                                    settings={"imported_from": self.batch.format})
        done = set(self.session.execute(select(Rating.distractor_id).where(Rating.rater_id == rater.id)).scalars())
        for item_slots in slots:
            judgements = [Judgement(d_id, new.accepted, score=new.score, rationale=f"imported from {self.batch.format}")
                          for _, d_id, new in item_slots if new.accepted is not None and d_id not in done]
            if judgements:
                save_judgements(self.session, rater_id=rater.id, item_id=item_slots[0][0], judgements=judgements)
                self.added["ratings"] += len(judgements)

    def _eval_set(self, slots) -> None:
        wanted = [(p, s, item_id, d_id) for p, item_slots in enumerate(slots)
                  for s, (item_id, d_id, _) in enumerate(item_slots)]
        existing = self.session.execute(select(EvalSet).where(EvalSet.name == self.batch.eval_set)).scalars().first()
        if existing is not None:
            have = self.session.execute(select(EvalSlot.position, EvalSlot.slot, EvalSlot.item_id,
                                               EvalSlot.distractor_id).where(EvalSlot.eval_set_id == existing.id)
                                        .order_by(EvalSlot.position, EvalSlot.slot)).all()
            if [tuple(r) for r in have] != wanted:
                raise InputError(f"An evaluation set named {self.batch.eval_set!r} exists with other contents.",
                                 "pass --dataset with a new name")
            return
        eval_set = EvalSet(name=self.batch.eval_set, params=json.dumps({"imported_from": self.batch.path}))
        self.session.add(eval_set)
        self.session.flush()
        self.session.add_all(EvalSlot(eval_set_id=eval_set.id, position=p, slot=s, item_id=i, distractor_id=d)
                             for p, s, i, d in wanted)
        self.added["eval slots"] += len(wanted)


def ingest(session: Session, *, batches: list[ImportBatch]) -> ImportCounts:
    """Write every batch in the caller's transaction; the caller commits once, so a failure leaves nothing."""
    counts = ImportCounts()
    for batch in batches:
        counts.records += batch.records
        counts.added.update(_Ingest(session, batch).run())
    return counts
