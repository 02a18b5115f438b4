"""Training data from the store: SFT rows, preference pairs and KTO labels in Alpaca, TRL and LLaMA-Factory form."""

import json
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TextIO, TypeVar

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.prompts import render_false, render_instruction, render_output
from rater.core.text import plural
from rater.store.items import in_chunks, item_texts
from rater.store.tables import Distractor, Item, RaterRecord, Rating, rating_scope

T = TypeVar("T")
PAIR_STRATEGIES = ("disjoint", "all", "one")
SPLITS = ("train", "dev", "test", "all")
ITEM_BATCH = 2000


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}.", f"use one of: {', '.join(SPLITS)}")


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


def _batched(pairs: Iterable[tuple[int, T]]) -> Iterator[list[tuple[int, T]]]:
    batch: list = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) >= ITEM_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def sft_rows(session: Session, *, split: str = "train", sources: Sequence[str] = (HUMAN_SOURCE,),
             tally: "Tally | None" = None) -> Iterator[tuple[str, str]]:
    """(instruction, output) per item with at least one distractor from `sources`, in item order."""
    query = (select(col(Distractor.item_id), col(Distractor.text)).join(Item, col(Item.id) == col(Distractor.item_id))
             .where(col(Distractor.source).in_(sources))
             .order_by(col(Distractor.item_id), col(Distractor.source), col(Distractor.position), col(Distractor.id)))
    if split != "all":
        query = query.where(col(Item.split) == split)
    grouped: dict[int, list[str]] = defaultdict(list)
    left_out: set[int] = set()
    for item_id, text in session.execute(query):
        if tally is not None and item_id in tally.leave_out:
            left_out.add(item_id)
            continue
        grouped[item_id].append(text)
    if tally is not None:
        tally.flagged += len(left_out)
    for batch in _batched(grouped.items()):
        instructions = _instructions(session, [i for i, _ in batch])
        tests = _test_items(session, [i for i, _ in batch]) if tally is not None and split in ("all", "test") else set()
        for item_id, texts in batch:
            if tally is not None:
                tally.test_rows += item_id in tests
            yield instructions[item_id], render_output(list(dict.fromkeys(texts)))


def rater_ids(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of the named raters (all raters when none are named); an unknown name is an error."""
    rows = session.execute(select(col(RaterRecord.name), col(RaterRecord.id))).all()
    known = dict(rows)
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"No ratings by {', '.join(missing)} in this database.",
                         f"raters here: {', '.join(sorted(known)) or 'none'}")
    return [known[n] for n in names] if names else list(known.values())


def verdicts(session: Session, *, raters: Sequence[int], split: str = "all",
             tally: "Tally | None" = None) -> Iterator[tuple[int, list[Verdict]]]:
    """(item id, verdicts) for every item with preference ratings by `raters`; ties between raters are left out
    (counted in `tally`). Blind-evaluation judgements never become training data (their items are test items).

    The votes are counted in SQL (one row per distractor), which keeps a million ratings within seconds."""
    yes = func.sum(case((col(Rating.accepted), 1), else_=0))
    query = (select(col(Rating.item_id), col(Rating.distractor_id), yes, func.count(), func.avg(col(Rating.score)), col(Distractor.text),
                    col(Distractor.source), col(Distractor.position))
             .join(Distractor, col(Distractor.id) == col(Rating.distractor_id))
             .where(col(Rating.rater_id).in_(raters), rating_scope(None))
             .group_by(col(Rating.item_id), col(Rating.distractor_id), col(Distractor.text), col(Distractor.source), col(Distractor.position))
             .order_by(col(Rating.item_id), col(Rating.distractor_id)))
    if split != "all":
        query = query.join(Item, col(Item.id) == col(Rating.item_id)).where(col(Item.split) == split)
    current, found = None, []
    leave_out = tally.leave_out if tally is not None else frozenset()
    left_out: set[int] = set()
    for item_id, d_id, accepted, votes, score, text, source, position in session.execute(query).yield_per(10_000):
        if item_id in leave_out:
            left_out.add(item_id)
            continue
        if item_id != current and current is not None:
            yield current, sorted(found, key=lambda v: v.order)
            found = []
        current = item_id
        if 2 * accepted != votes:  # an even split between raters gives no label
            found.append(Verdict(d_id, text, (source, position, d_id), 2 * accepted > votes, score))
        elif tally is not None:
            tally.ties += 1
    if current is not None:
        yield current, sorted(found, key=lambda v: v.order)
    if tally is not None:
        tally.flagged += len(left_out)


@dataclass
class Tally:
    """What an export left out because it teaches nothing, and how many rows come from test items, counted so the
    command can say so."""

    equal_pairs: int = 0  # preference pairs whose chosen and rejected texts are the same
    conflicting: int = 0  # KTO rows whose completion is labelled both ways for the same prompt
    repeated: int = 0  # KTO rows repeating one already written (same prompt, completion and label)
    ties: int = 0  # distractors the raters split evenly on: no label
    test_rows: int = 0  # rows written from test items (only when the test split was asked for)
    leave_out: frozenset[int] = frozenset()  # items not to export (flagged as broken by most of their teachers)
    flagged: int = 0  # items left out for that

    def describe(self) -> str:
        """The left-out rows, in words ("" when none)."""
        parts = [f"{self.equal_pairs} pairs whose chosen and rejected texts are the same (they teach nothing)"
                 if self.equal_pairs else "",
                 f"{self.conflicting} rows whose completion is labelled both ways" if self.conflicting else "",
                 f"{self.repeated} repeated rows" if self.repeated else "",
                 f"{self.ties} distractors the raters split evenly on (no majority)" if self.ties else "",
                 (f"{self.flagged} {'item' if self.flagged == 1 else 'items'} flagged as broken by most of their "
                  "teachers (--include-flagged keeps them)") if self.flagged else ""]
        return "; ".join(p for p in parts if p)


def _test_items(session: Session, item_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in in_chunks(item_ids):
        found.update(session.execute(select(col(Item.id)).where(col(Item.id).in_(chunk), col(Item.split) == "test")).scalars())
    return found


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


def preference_rows(session: Session, *, raters: Sequence[int], strategy: str = "disjoint", split: str = "train",
                    tally: Tally | None = None) -> Iterator[tuple[str, str, str]]:
    """(instruction, chosen, rejected) rows; a pair whose two texts are the same (one text from two sources,
    rated both ways) is left out and counted in `tally`."""
    tally = tally if tally is not None else Tally()
    for batch in _batched((i, pairs_of(v, strategy)) for i, v in verdicts(session, raters=raters, split=split,
                                                                          tally=tally)):
        instructions = _instructions(session, [i for i, pairs in batch if pairs])
        tests = _test_items(session, [i for i, pairs in batch if pairs]) if split in ("all", "test") else set()
        for item_id, pairs in batch:
            for chosen, rejected in pairs:
                if chosen.strip() == rejected.strip():
                    tally.equal_pairs += 1
                    continue
                tally.test_rows += item_id in tests
                yield instructions[item_id], chosen, rejected


def kto_rows(session: Session, *, raters: Sequence[int], split: str = "train",
             tally: Tally | None = None) -> Iterator[tuple[str, str, bool]]:
    """(instruction, distractor, accepted) for every rated distractor: KTO needs no pairs. A text of one item
    labelled both ways (it came from two sources) is left out, and a repeat with the same label is written once;
    both are counted in `tally`."""
    tally = tally if tally is not None else Tally()
    for batch in _batched(verdicts(session, raters=raters, split=split, tally=tally)):
        instructions = _instructions(session, [i for i, _ in batch])
        tests = _test_items(session, [i for i, _ in batch]) if split in ("all", "test") else set()
        for item_id, item_verdicts in batch:
            labels: dict[str, set[bool]] = defaultdict(set)
            for v in item_verdicts:
                labels[v.text.strip()].add(v.accepted)
            written: set[str] = set()
            for v in item_verdicts:
                text = v.text.strip()
                if len(labels[text]) > 1:
                    tally.conflicting += 1
                elif text in written:
                    tally.repeated += 1
                else:
                    written.add(text)
                    tally.test_rows += item_id in tests
                    yield instructions[item_id], v.text, v.accepted


KTO_MINORITY = 0.05  # below this share of either label, KTO's class weights stretch past what it can learn from


def kto_balance(labels: Sequence[bool]) -> str | None:
    """A warning when accepted or rejected rows are under 5 % of KTO rows, else None."""
    if not labels:
        return None
    accepted = sum(labels)
    smaller, name = min((accepted, "accepted"), (len(labels) - accepted, "rejected"))
    if smaller / len(labels) >= KTO_MINORITY:
        return None
    return (f"only {smaller} of {len(labels)} KTO rows ({smaller / len(labels):.1%}) are {name}; KTO weighs that class "
            f"up {max(accepted, len(labels) - accepted) / max(smaller, 1):.0f} times and learns little from so few. "
            "Rate more distractors, or use other raters.")


def rated_by_split(session: Session, *, raters: Sequence[int]) -> dict[str, int]:
    """Distractors with preference ratings by `raters`, per split ("none" for items never split)."""
    rows = session.execute(select(func.coalesce(col(Item.split), "none"), func.count(func.distinct(col(Rating.distractor_id))))
                           .join(Item, col(Item.id) == col(Rating.item_id))
                           .where(col(Rating.rater_id).in_(raters), rating_scope(None)).group_by(col(Item.split))).all()
    return {split: count for split, count in sorted(rows)}


def sourced_by_split(session: Session, *, sources: Sequence[str]) -> dict[str, int]:
    """Items with distractors from `sources`, per split ("none" for items never split)."""
    rows = session.execute(select(func.coalesce(col(Item.split), "none"), func.count(func.distinct(col(Item.id))))
                           .join(Distractor, col(Distractor.item_id) == col(Item.id))
                           .where(col(Distractor.source).in_(sources)).group_by(col(Item.split))).all()
    return {split: count for split, count in sorted(rows)}


def nothing_in_split(what: str, split: str, found: dict[str, int]) -> InputError:
    """The error of an export or training stage that found nothing in the asked split, naming where there is some."""
    if not found:
        return InputError(f"There are no {what} in this database at all.",
                          "import items, then rate them (or generate distractors) first")
    where = ", ".join(f"{name} {count}" for name, count in found.items())
    if set(found) <= {"none", "excluded"}:
        hint = "run `rater split` to make a train split"
    elif set(found) <= {"none", "test", "excluded"}:  # `rater split` keeps the splits items have unless told
        hint = "run `rater split --resplit` to split the items by context into train and test"
    else:
        hint = f"pass --split with one of the splits that have some ({where})"
    return InputError(f"No {what} in split {split!r} (there are some in: {where}).", hint +
                      "; test items never become training data unless you pass --split test or --split all")


def no_rows_error(session: Session, what: str, split: str, raters: Sequence[int], tally: Tally) -> InputError:
    """Why an export of `what` ("preference pairs" or "rated distractors") from these raters' ratings is empty."""
    found = rated_by_split(session, raters=raters)
    rated = sum(found.values()) if split == "all" else found.get(split, 0)
    if not rated:
        return nothing_in_split(f"{what} (preference ratings)", split, found)
    left_out = f" ({tally.describe()})" if tally.describe() else ""
    if what == "preference pairs":
        return InputError(f"No preference pairs: of the {plural(rated, 'rated distractor')} in split {split!r}, no "
                          f"item has both an accepted and a rejected one{left_out}.",
                          "a pair needs one of each on an item: rate more distractors, or export KTO rows, which "
                          "need no pairs (`rater export kto`)")
    return InputError(f"No {what} to write: every one of the {plural(rated, 'rated distractor')} in split {split!r} "
                      f"was left out{left_out}.", "rate more distractors, or count other raters (--rater)")


def nonempty(rows: Iterable, error: Callable[[], Exception]) -> Iterator:
    """`rows` unchanged; `error()` is raised before anything is written when there is none."""
    rows = iter(rows)
    first = next(rows, _NOTHING)
    if first is _NOTHING:
        raise error()
    yield first
    yield from rows


_NOTHING = object()


def measured(rows: Iterable[tuple], count_tokens: Callable[[str], int], max_length: int, long_rows: list[int],
             render: Callable[[str], str] = render_false) -> Iterator[tuple]:
    """`rows` unchanged, counting in long_rows[0] those whose prompt and longest answer (as `render` writes it)
    pass `max_length` tokens."""
    for row in rows:
        texts = [t for t in row[1:] if isinstance(t, str)]
        if count_tokens(row[0]) + max((count_tokens(render(t)) for t in texts), default=0) > max_length:
            long_rows[0] += 1
        yield row


# Writers ---------------------------------------------------------------------------------------------------------

EXPORT_FORMATS = ("alpaca", "trl", "llamafactory")


def check_suffix(path: Path, fmt: str) -> None:
    """A file's suffix must say what it holds: JSON Lines for trl, one JSON document for the others."""
    wanted = ".jsonl" if fmt == "trl" else ".json"
    if path.suffix.lower() != wanted:
        kind = "JSON Lines (one row a line)" if fmt == "trl" else "one JSON document"
        raise InputError(f"--format {fmt} writes {kind}, but {path.name} ends in {path.suffix or 'no suffix'!r}.",
                         f"name the file {path.with_suffix(wanted).name}")


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
    with _written(path) as out:
        out.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    return len(rows)


def _write_jsonl(rows: Iterable[dict], path: Path) -> int:
    count = 0
    with _written(path) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


@contextmanager
def _written(path: Path) -> Iterator[TextIO]:
    """A file written whole or not at all: into FILE.part, renamed over FILE only when everything is in."""
    check_output_folder(path)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8") as out:
            yield out
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


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
