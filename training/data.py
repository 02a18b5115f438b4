"""Training rows from the store or from exported files, shaped for TRL (conversational when there is a chat
template, so training wraps the instruction exactly as generation does)."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.prompts import render_false
from rater.data.exports import (
    Tally,
    as_conversation,
    kto_rows,
    no_rows_error,
    nonempty,
    nothing_in_split,
    preference_rows,
    rater_ids,
    sft_rows,
    sourced_by_split,
)
from rater.data.formats.common import read_json
from rater.store.engine import session_scope
from rater.store.flags import flagged_by_majority
from rater.store.items import check_sources


def rows_hash(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _file_rows(path: Path) -> list[dict]:
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: expected a non-empty list of rows.", "export one with `rater export`")
    return data


def sft_from_file(path: Path) -> list[dict]:
    rows = []
    for n, row in enumerate(_file_rows(path)):
        if "instruction" in row and isinstance(row.get("output"), str):
            rows.append({"prompt": row["instruction"], "completion": row["output"]})
        elif "prompt" in row and "completion" in row:
            rows.append({"prompt": row["prompt"], "completion": row["completion"]})
        else:
            raise InputError(f"{path}: record {n} is neither an Alpaca SFT row nor prompt/completion.",
                             "export it with `rater export sft`")
    return rows


def pref_from_file(path: Path) -> list[dict]:
    rows = []
    for n, row in enumerate(_file_rows(path)):
        prompt = row.get("instruction", row.get("prompt"))
        if isinstance(row.get("output"), list) and len(row["output"]) == 2:
            chosen, rejected = row["output"]
        elif "chosen" in row and "rejected" in row:
            chosen, rejected = row["chosen"], row["rejected"]
        else:
            raise InputError(f"{path}: record {n} has no chosen/rejected pair.", "export it with `rater export pref`")
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def kto_from_file(path: Path) -> list[dict]:
    rows = []
    for n, row in enumerate(_file_rows(path)):
        label = row.get("label", row.get("kto_tag"))
        if not isinstance(label, bool):
            raise InputError(f"{path}: record {n} has no boolean label or kto_tag.", "export it with `rater export kto`")
        rows.append({"prompt": row.get("prompt", row.get("instruction")),
                     "completion": row.get("completion", row.get("output")), "label": label})
    return rows


def sft_from_store(engine, split: str = "train", sources=(HUMAN_SOURCE,), tally: Tally | None = None) -> list[dict]:
    tally = tally if tally is not None else Tally()
    with session_scope(engine) as session:
        tally.leave_out = frozenset(flagged_by_majority(session))  # items most of their teachers flagged as broken
        check_sources(session, sources)
        rows = nonempty(sft_rows(session, split=split, sources=sources, tally=tally), lambda: nothing_in_split(
            f"items with {', '.join(sources)} distractors", split, sourced_by_split(session, sources=sources)))
        return [{"prompt": i, "completion": o} for i, o in rows]


def pref_from_store(engine, raters=(), strategy: str = "disjoint", split: str = "train",
                    tally: Tally | None = None) -> list[dict]:
    tally = tally if tally is not None else Tally()
    with session_scope(engine) as session:
        tally.leave_out = frozenset(flagged_by_majority(session))
        ids = rater_ids(session, raters)
        rows = nonempty(preference_rows(session, raters=ids, strategy=strategy, split=split, tally=tally),
                        lambda: no_rows_error(session, "preference pairs", split, ids, tally))
        return [{"prompt": i, "chosen": render_false(c), "rejected": render_false(r)} for i, c, r in rows]


def kto_from_store(engine, raters=(), split: str = "train", tally: Tally | None = None) -> list[dict]:
    tally = tally if tally is not None else Tally()
    with session_scope(engine) as session:
        tally.leave_out = frozenset(flagged_by_majority(session))
        ids = rater_ids(session, raters)
        rows = nonempty(kto_rows(session, raters=ids, split=split, tally=tally),
                        lambda: no_rows_error(session, "rated distractors", split, ids, tally))
        return [{"prompt": i, "completion": render_false(d), "label": a} for i, d, a in rows]


@dataclass(frozen=True)
class Fitted:
    """The rows a trainer gets: those that fit `max_length` tokens whole (prompt and longest answer). A longer row
    would be cut, and a cut distractor teaches a wrong one, so it is left out and counted instead."""

    rows: list[dict]
    given: int
    max_length: int

    @property
    def dropped(self) -> int:
        return self.given - len(self.rows)

    def describe(self) -> str:
        dropped = (f", {self.dropped} left out (longer than --max-length {self.max_length} tokens)" if self.dropped
                   else "")
        return f"{self.given} rows given, {len(self.rows)} kept{dropped}"

    def manifest(self) -> dict:
        return {"rows_given": self.given, "rows_kept": len(self.rows), "rows_dropped": self.dropped,
                "dropped_reason": f"longer than max_length {self.max_length} tokens" if self.dropped else None}


def _text(value) -> str:
    """A prompt or answer as text: a string, or the content of a conversational row's turns."""
    return value if isinstance(value, str) else "".join(turn["content"] for turn in value)


def row_tokens(row: dict, tokenizer) -> int:
    """Tokens of a row as the trainer sees it: the prompt (in the chat template when there is one) and its longest
    answer with the end-of-sequence token."""
    prompt = row["prompt"]
    if getattr(tokenizer, "chat_template", None):
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt_text = _text(prompt)
    answers = [_text(row[key]) for key in ("completion", "chosen", "rejected") if key in row]
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    return count(prompt_text) + max(map(count, answers), default=0) + 1


def fit_to_length(rows: list[dict], tokenizer, max_length: int) -> Fitted:
    kept = [row for row in rows if row_tokens(row, tokenizer) <= max_length]
    if rows and not kept:
        raise InputError(f"Every one of the {len(rows)} training rows is longer than --max-length {max_length} tokens.",
                         "raise --max-length, or exclude long texts with `rater split --max-context-tokens`")
    return Fitted(kept, len(rows), max_length)


def conversational(rows: list[dict], tokenizer) -> list[dict]:
    """Prompts become user turns and answers assistant turns when the tokenizer has a chat template (the same
    form `rater export ... --format trl --chat` writes)."""
    if not getattr(tokenizer, "chat_template", None):
        return rows
    return [row if isinstance(row["prompt"], list) else as_conversation(row) for row in rows]  # --chat files as is


def as_dataset(rows: list[dict], tokenizer):
    from datasets import Dataset

    if not rows:
        raise InputError("No training rows.", "import and rate data first, or pass --data FILE")
    return Dataset.from_list(conversational(rows, tokenizer))
