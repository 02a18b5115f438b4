"""Training rows from the store or from exported files, shaped for TRL (conversational when there is a chat
template, so training wraps the instruction exactly as generation does)."""

import hashlib
import json
from pathlib import Path

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.prompts import render_false
from rater.data.exports import as_conversation, kto_rows, preference_rows, rater_ids, sft_rows
from rater.data.formats.common import read_json
from rater.store.engine import session_scope


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


def sft_from_store(engine, split: str = "train", sources=(HUMAN_SOURCE,)) -> list[dict]:
    with session_scope(engine) as session:
        return [{"prompt": i, "completion": o} for i, o in sft_rows(session, split=split, sources=sources)]


def pref_from_store(engine, raters=(), strategy: str = "disjoint", split: str = "all") -> list[dict]:
    with session_scope(engine) as session:
        return [{"prompt": i, "chosen": render_false(c), "rejected": render_false(r)}
                for i, c, r in preference_rows(session, raters=rater_ids(session, raters), strategy=strategy,
                                               split=split)]


def kto_from_store(engine, raters=(), split: str = "all") -> list[dict]:
    with session_scope(engine) as session:
        return [{"prompt": i, "completion": render_false(d), "label": a}
                for i, d, a in kto_rows(session, raters=rater_ids(session, raters), split=split)]


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
