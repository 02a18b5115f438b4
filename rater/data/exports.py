"""Training data from the store: SFT rows, preference pairs and KTO labels in Alpaca, TRL and LLaMA-Factory form."""

import json
from collections import defaultdict
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sqlalchemy import case, func, select
from sqlmodel import Session

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.prompts import render_false, render_instruction, render_output
from rater.store.items import item_texts
from rater.store.tables import Distractor, Item, Rater, Rating, rating_scope

PAIR_STRATEGIES = ("disjoint", "all", "one")
ITEM_BATCH = 2000


@dataclass(frozen=True)
class Verdict:
    """The selected raters' combined view of one distractor: majority acceptance, mean score."""

    distractor_id: int
    text: str
    order: tuple
    accepted: bool
    score: float | None


def _instructions(session: Session, item_ids: Sequence[int]) -> dict[int, str]:
    return {item_id: render_instruction(*texts) for item_id, texts in item_texts(session, item_ids).items()}


def _batched(pairs: Iterable[tuple[int, object]]) -> Iterator[list[tuple[int, object]]]:
    batch: list = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) >= ITEM_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def sft_rows(session: Session, *, split: str = "train", sources: Sequence[str] = (HUMAN_SOURCE,)) -> Iterator[tuple[str, str]]:
    """(instruction, output) per item with at least one distractor from `sources`, in item order."""
    query = (select(Distractor.item_id, Distractor.text).join(Item, Item.id == Distractor.item_id)
             .where(Distractor.source.in_(sources))
             .order_by(Distractor.item_id, Distractor.source, Distractor.position, Distractor.id))
    if split != "all":
        query = query.where(Item.split == split)
    grouped: dict[int, list[str]] = defaultdict(list)
    for item_id, text in session.execute(query):
        grouped[item_id].append(text)
    for batch in _batched(grouped.items()):
        instructions = _instructions(session, [i for i, _ in batch])
        for item_id, texts in batch:
            yield instructions[item_id], render_output(list(dict.fromkeys(texts)))


def rater_ids(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of the named raters (all raters when none are named); an unknown name is an error."""
    rows = session.execute(select(Rater.name, Rater.id)).all()
    known = dict(rows)
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"No ratings by {', '.join(missing)} in this database.",
                         f"raters here: {', '.join(sorted(known)) or 'none'}")
    return [known[n] for n in names] if names else list(known.values())


def verdicts(session: Session, *, raters: Sequence[int], split: str = "all") -> Iterator[tuple[int, list[Verdict]]]:
    """(item id, verdicts) for every item with preference ratings by `raters`; ties between raters are left out.
    Blind-evaluation judgements never become training data (their items are test items).

    The votes are counted in SQL (one row per distractor), which keeps a million ratings within seconds."""
    yes = func.sum(case((Rating.accepted, 1), else_=0))
    query = (select(Rating.item_id, Rating.distractor_id, yes, func.count(), func.avg(Rating.score), Distractor.text,
                    Distractor.source, Distractor.position)
             .join(Distractor, Distractor.id == Rating.distractor_id)
             .where(Rating.rater_id.in_(raters), rating_scope(None))
             .group_by(Rating.item_id, Rating.distractor_id, Distractor.text, Distractor.source, Distractor.position)
             .order_by(Rating.item_id, Rating.distractor_id))
    if split != "all":
        query = query.join(Item, Item.id == Rating.item_id).where(Item.split == split)
    current, found = None, []
    for item_id, d_id, accepted, votes, score, text, source, position in session.execute(query).yield_per(10_000):
        if item_id != current and current is not None:
            yield current, sorted(found, key=lambda v: v.order)
            found = []
        current = item_id
        if 2 * accepted != votes:  # an even split between raters gives no label
            found.append(Verdict(d_id, text, (source, position, d_id), 2 * accepted > votes, score))
    if current is not None:
        yield current, sorted(found, key=lambda v: v.order)


@dataclass
class Dropped:
    """Rows an export left out because they teach nothing, counted so the command can say so."""

    equal_pairs: int = 0  # preference pairs whose chosen and rejected texts are the same
    conflicting: int = 0  # KTO rows whose completion is labelled both ways for the same prompt
    repeated: int = 0  # KTO rows repeating one already written (same prompt, completion and label)

    def describe(self) -> str:
        parts = [f"{self.equal_pairs} pairs whose chosen and rejected texts are the same" if self.equal_pairs else "",
                 f"{self.conflicting} rows whose completion is labelled both ways" if self.conflicting else "",
                 f"{self.repeated} repeated rows" if self.repeated else ""]
        return "; ".join(p for p in parts if p)


def pairs_of(item_verdicts: list[Verdict], strategy: str = "disjoint") -> list[tuple[str, str]]:
    """(chosen, rejected) texts. `disjoint`: min(#accepted, #rejected) pairs, each distractor used once,
    best-scored accepted with worst-scored rejected; `all`: every combination; `one`: the best pair only."""
    accepted = sorted((v for v in item_verdicts if v.accepted), key=lambda v: (-(v.score or 0), v.order))
    rejected = sorted((v for v in item_verdicts if not v.accepted), key=lambda v: ((v.score or 0), v.order))
    if strategy == "all":
        chosen = list(product(accepted, rejected))
    elif strategy == "one":
        chosen = list(zip(accepted[:1], rejected[:1]))
    elif strategy == "disjoint":
        chosen = list(zip(accepted, rejected))
    else:
        raise InputError(f"Unknown pair strategy {strategy!r}.", f"use one of: {', '.join(PAIR_STRATEGIES)}")
    return [(a.text, r.text) for a, r in chosen]


def preference_rows(session: Session, *, raters: Sequence[int], strategy: str = "disjoint", split: str = "all",
                    dropped: Dropped | None = None) -> Iterator[tuple[str, str, str]]:
    """(instruction, chosen, rejected) rows; a pair whose two texts are the same (one text from two sources,
    rated both ways) is left out and counted in `dropped`."""
    dropped = dropped if dropped is not None else Dropped()
    for batch in _batched((i, pairs_of(v, strategy)) for i, v in verdicts(session, raters=raters, split=split)):
        instructions = _instructions(session, [i for i, pairs in batch if pairs])
        for item_id, pairs in batch:
            for chosen, rejected in pairs:
                if chosen.strip() == rejected.strip():
                    dropped.equal_pairs += 1
                    continue
                yield instructions[item_id], chosen, rejected


def kto_rows(session: Session, *, raters: Sequence[int], split: str = "all",
             dropped: Dropped | None = None) -> Iterator[tuple[str, str, bool]]:
    """(instruction, distractor, accepted) for every rated distractor: KTO needs no pairs. A text of one item
    labelled both ways (it came from two sources) is left out, and a repeat with the same label is written once;
    both are counted in `dropped`."""
    dropped = dropped if dropped is not None else Dropped()
    for batch in _batched(verdicts(session, raters=raters, split=split)):
        instructions = _instructions(session, [i for i, _ in batch])
        for item_id, item_verdicts in batch:
            labels: dict[str, set[bool]] = defaultdict(set)
            for v in item_verdicts:
                labels[v.text.strip()].add(v.accepted)
            written: set[str] = set()
            for v in item_verdicts:
                text = v.text.strip()
                if len(labels[text]) > 1:
                    dropped.conflicting += 1
                elif text in written:
                    dropped.repeated += 1
                else:
                    written.add(text)
                    yield instructions[item_id], v.text, v.accepted


# Writers ---------------------------------------------------------------------------------------------------------

EXPORT_FORMATS = ("alpaca", "trl", "llamafactory")


def as_conversation(row: dict) -> dict:
    """A TRL row in conversational form: the prompt is a user turn and every answer an assistant turn, so TRL (and
    `rater train`) wrap the instruction in the model's chat template, exactly as the hf generator does."""
    shaped = {"prompt": [{"role": "user", "content": row["prompt"]}]}
    for key in ("completion", "chosen", "rejected"):
        if key in row:
            shaped[key] = [{"role": "assistant", "content": row[key]}]
    if "label" in row:
        shaped["label"] = row["label"]
    return shaped


def _trl_rows(rows: Iterable[dict], chat: bool) -> Iterator[dict]:
    return (as_conversation(row) for row in rows) if chat else iter(rows)


def write_sft(rows: Iterable[tuple[str, str]], path: Path, fmt: str, chat: bool = False) -> int:
    if fmt == "trl":
        return _write_jsonl(_trl_rows(({"prompt": i, "completion": o} for i, o in rows), chat), path)
    count = _write_json([{"instruction": i, "input": "", "output": o} for i, o in rows], path)
    if fmt == "llamafactory":
        _dataset_info(path, {"columns": {"prompt": "instruction", "query": "input", "response": "output"}})
    return count


def write_pref(rows: Iterable[tuple[str, str, str]], path: Path, fmt: str, chat: bool = False) -> int:
    if fmt == "trl":
        return _write_jsonl(_trl_rows(({"prompt": i, "chosen": render_false(c), "rejected": render_false(r)}
                                       for i, c, r in rows), chat), path)
    if fmt == "alpaca":  # the published form, read by LLaMA-Factory's legacy pairwise loader
        return _write_json([{"instruction": i, "input": "", "output": [render_false(c), render_false(r)]}
                            for i, c, r in rows], path)
    count = _write_json([{"instruction": i, "input": "", "chosen": render_false(c), "rejected": render_false(r)}
                         for i, c, r in rows], path)
    _dataset_info(path, {"ranking": True, "columns": {"prompt": "instruction", "query": "input",
                                                      "chosen": "chosen", "rejected": "rejected"}})
    return count


def write_kto(rows: Iterable[tuple[str, str, bool]], path: Path, fmt: str, chat: bool = False) -> int:
    if fmt == "trl":
        return _write_jsonl(_trl_rows(({"prompt": i, "completion": render_false(d), "label": bool(a)}
                                       for i, d, a in rows), chat), path)
    if fmt != "llamafactory":
        raise InputError(f"KTO rows have no {fmt} form.", "use --format trl or llamafactory")
    count = _write_json([{"instruction": i, "input": "", "output": render_false(d), "kto_tag": bool(a)}
                         for i, d, a in rows], path)
    _dataset_info(path, {"columns": {"prompt": "instruction", "query": "input", "response": "output",
                                     "kto_tag": "kto_tag"}})
    return count


def _write_json(rows: list, path: Path) -> int:
    check_output_folder(path)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(rows)


def _write_jsonl(rows: Iterable[dict], path: Path) -> int:
    check_output_folder(path)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def check_output_folder(path: Path) -> None:
    """A clear error before any work when the file's folder is missing."""
    if not path.parent.is_dir():
        raise InputError(f"Cannot write {path}: the folder {path.parent} does not exist.", "create it first")


def _dataset_info(path: Path, entry: dict) -> None:
    """Add this file's entry to dataset_info.json beside it, keeping the other entries."""
    info_path = path.parent / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[path.stem] = {"file_name": path.name, **entry}
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
