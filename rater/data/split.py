"""Train/test split by context (no context in both) after dropping items whose context is too long."""

import math
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from sqlalchemy import select, update
from sqlmodel import Session, col

from rater.core.errors import InputError
from rater.store.items import in_chunks
from rater.store.tables import Context, Item, Split

CHARS_PER_TOKEN = 3.0


def approximate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per 3 characters, rounded up.

    An assumption, not a measurement: subword tokenizers of English-centred models spend roughly 3-4
    characters a token on Swedish prose, so 3 errs towards dropping a context rather than keeping one too long.
    Pass --tokenizer for exact counts.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def tokenizer_counter(path: Path) -> Callable[[str], int]:
    """Token counts from a `tokenizer.json` (or a folder holding one), via the tokenizers package."""
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.exists():
        raise InputError(f"No tokenizer at {file}.", "pass a tokenizer.json file or a model folder holding one")
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise InputError("--tokenizer needs the tokenizers package.", "pip install 'rater[train]'") from exc
    tokenizer = Tokenizer.from_file(str(file))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def assign_splits(session: Session, *, test_fraction: float = 0.1, seed: int = 0, max_context_tokens: int = 1024,
                  count_tokens: Callable[[str], int] = approximate_tokens, dataset: str | None = None,
                  keep: bool | None = None) -> Counter:
    """Mark items train / test / excluded: contexts move one by one, shuffled by `seed`, into test until it
    holds `test_fraction` of the kept items. With `dataset`, the contexts of that dataset's items are split, and
    every item of those contexts goes with its context, whatever its dataset (counted as "shared"), so no
    context ever lands in both splits.

    `keep` (the default, None, when any item has a split): items keep the split they have (from their file's name,
    or an earlier split), and only items without one (or excluded before) are split, each going with its context's
    split where the context has one; the length filter applies to all, and "shared_contexts" counts contexts the
    kept splits put in two splits. With `keep` False everything is split again by context (the method's rule: no
    context in both). The counts say how many items kept their split ("kept") and how many changed ("changed"),
    and which way it went ("kept_splits" or "resplit", the latter only when items had splits)."""
    if max_context_tokens < 1:
        raise InputError(f"--max-context-tokens must be 1 or more, got {max_context_tokens}: every item would be "
                         "excluded.", "use e.g. 1024 (the default)")
    if not 0 <= test_fraction <= 1:
        raise InputError(f"--test-fraction must be a share from 0 (no test split) to 1 (everything test), got "
                         f"{test_fraction}.", "use e.g. 0.1")
    if dataset and not session.execute(select(col(Item.id)).where(col(Item.dataset) == dataset).limit(1)).first():
        known = ", ".join(session.execute(select(col(Item.dataset)).distinct().order_by(col(Item.dataset))).scalars())
        raise InputError(f"No items of dataset {dataset!r}.", f"datasets here: {known or 'none (import items first)'}")
    query = (select(col(Item.id), col(Item.context_id), col(Context.text), col(Item.dataset), col(Item.split),
                    col(Item.file_split)).join(Context, col(Context.id) == col(Item.context_id)))
    if dataset:
        query = query.where(col(Item.context_id).in_(select(col(Item.context_id)).where(col(Item.dataset) == dataset)))
    by_context: dict[int, list[int]] = defaultdict(list)
    too_long: list[int] = []
    sizes: dict[int, int] = {}
    shared = 0
    before: dict[int, str | None] = {}
    given: dict[int, str] = {}  # the splits items have, or came with from their files (when excluded since)
    splits = (Split.train.value, Split.dev.value, Split.test.value)
    for item_id, context_id, text, item_dataset, split, file_split in session.execute(query):
        shared += bool(dataset) and item_dataset != dataset
        before[item_id] = split
        if split in splits or (split in (None, Split.excluded.value) and file_split in splits):
            given[item_id] = split if split in splits else file_split
        if context_id not in sizes:
            sizes[context_id] = count_tokens(text)
        (too_long if sizes[context_id] > max_context_tokens else by_context[context_id]).append(item_id)
    if keep is not False and given:  # by default the splits items have stay (an import's, an earlier split's)
        counts = _keep_splits(session, by_context, too_long, before, given, test_fraction, seed, shared)
        counts["kept_splits"] = 1
        return counts
    if given:
        counts = _split_by_context(session, by_context, too_long, before, test_fraction, seed, shared)
        counts["resplit"] = 1
        return counts
    return _split_by_context(session, by_context, too_long, before, test_fraction, seed, shared)


def _split_by_context(session: Session, by_context: dict[int, list[int]], too_long: list[int],
                      before: dict[int, str | None], test_fraction: float, seed: int, shared: int) -> Counter:
    """Everything split again by context (the method's rule: no context in both splits)."""
    kept = sum(len(ids) for ids in by_context.values())
    contexts = sorted(by_context)
    random.Random(seed).shuffle(contexts)
    test: list[int] = []
    for context_id in contexts:
        if len(test) >= test_fraction * kept or not test_fraction:
            break
        test.extend(by_context[context_id])
    test_set = set(test)
    train = [i for ids in by_context.values() for i in ids if i not in test_set]
    return _write(session, {Split.test: test, Split.train: train, Split.excluded: too_long}, before, shared)


def _write(session: Session, splits: dict[Split, list[int]], before: dict[int, str | None], shared: int) -> Counter:
    for split, ids in splits.items():
        for chunk in in_chunks(ids):
            session.execute(update(Item).where(col(Item.id).in_(chunk)).values(split=split.value))
    after = {i: split.value for split, ids in splits.items() for i in ids}
    changed = sum(1 for i, split in after.items() if before.get(i) != split)
    counts = Counter({split.value: len(ids) for split, ids in splits.items()})
    counts.update({"shared": shared, "changed": changed, "kept": len(after) - changed})
    return counts


def _keep_splits(session: Session, by_context: dict[int, list[int]], too_long: list[int],
                 before: dict[int, str | None], given: dict[int, str], test_fraction: float, seed: int,
                 shared: int) -> Counter:
    """Items keep the split they have; the others go with their context's split, or are split by context."""
    splits: dict[Split, list[int]] = {Split.train: [], Split.dev: [], Split.test: [], Split.excluded: list(too_long)}
    unsplit_contexts = []
    for context_id, ids in by_context.items():
        known = {given[i] for i in ids if i in given}
        if not known:
            unsplit_contexts.append(context_id)
            continue
        home = Split(sorted(known)[0]) if len(known) == 1 else None
        for i in ids:
            splits[Split(given[i]) if i in given else (home or Split.train)].append(i)
    random.Random(seed).shuffle(unsplit_contexts)
    new = sum(len(by_context[c]) for c in unsplit_contexts)
    moved = 0
    for context_id in unsplit_contexts:
        to_test = test_fraction and moved < test_fraction * new
        splits[Split.test if to_test else Split.train].extend(by_context[context_id])
        moved += len(by_context[context_id]) if to_test else 0
    counts = _write(session, splits, before, shared)
    counts["shared_contexts"] = sum(1 for ids in by_context.values()
                                    if len({given[i] for i in ids if i in given}) > 1)
    return counts
