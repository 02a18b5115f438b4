"""Pointing at the evidence: where in the reading text the answer and each option occur, and the part of the text
around the sentence that holds the answer (shown first, the whole text on demand). Baseline distractors are spans of
the text, so the marks show at once which options were lifted from it. Pure text work, for every screen."""

import re
from dataclasses import dataclass

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Mark:
    """A span of the text: `label` is "answer" or the option's number (1, 2, ...)."""

    start: int
    end: int
    label: str


def occurrences(text: str, phrase: str) -> list[tuple[int, int]]:
    """Where `phrase` occurs in `text` as whole words, case ignored (an empty or one-letter phrase: nowhere)."""
    phrase = phrase.strip()
    if len(phrase) < 2:
        return []
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


@dataclass(frozen=True)
class Segment:
    """A piece of the text with the marks that cover it, and the options whose span ends right after it."""

    text: str
    labels: frozenset[str]
    ends: tuple[str, ...] = ()


def segments(text: str, answer: str, options: list[str], start: int = 0, end: int | None = None) -> list[Segment]:
    """`text[start:end]` cut where any occurrence of the answer or an option begins or ends, so that overlapping
    occurrences ("litet däggdjur som lever" and "lever i skogar") are all marked."""
    end = len(text) if end is None else end
    found = [Mark(s, e, "answer") for s, e in occurrences(text, answer)]
    found += [Mark(s, e, str(n)) for n, option in enumerate(options, 1) for s, e in occurrences(text, option)]
    found = [m for m in found if m.start >= start and m.end <= end]
    cuts = sorted({start, end, *(m.start for m in found), *(m.end for m in found)})
    pieces = []
    for left, right in zip(cuts, cuts[1:]):
        labels = frozenset(m.label for m in found if m.start <= left and m.end >= right)
        ends = tuple(m.label for m in found if m.end == right and m.label != "answer")
        pieces.append(Segment(text[left:right], labels, ends))
    return pieces


def excerpt(text: str, answer: str, around: int = 1) -> tuple[int, int]:
    """The span of the sentence that holds the answer with `around` sentences on each side; the whole text when
    the answer does not occur in it."""
    found = occurrences(text, answer)
    if not found:
        return 0, len(text)
    starts = [0] + [m.end() for m in SENTENCE_END.finditer(text)]
    at = max(i for i, s in enumerate(starts) if s <= found[0][0])
    first, last = max(0, at - around), min(len(starts) - 1, at + around)
    end = starts[last + 1] if last + 1 < len(starts) else len(text)
    return starts[first], end
