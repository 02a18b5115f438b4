"""The baseline generator: spans of the item's own text shaped like the answer. Offline, deterministic, no model.

Candidates are runs of 1-12 words inside one sentence of the context. A candidate is dropped when it is the
answer, contains it, lies inside it, or overlaps where the answer stands in the text; when it has digits and
the answer has none (or the reverse); or when it starts or ends with a bare function word the answer does not
start or end with. The rest are ranked by these points, best first, ties by position in the text:
  +3 same first word as the answer (a shared function word such as "att", "för", "klockan", "i")
  +2 a number for a number (both contain digits)
  +1 same capitalisation of the first letter
  +1 the span is a whole clause (starts a sentence or follows a comma, ends before punctuation)
  -1 per word of length difference to the answer
A candidate sharing two or more content words with the answer, or only the answer's, is dropped too (a
reworded answer), and so is one the item already has as a distractor from any source; near-duplicates (one inside
another) are skipped so the distractors differ.
"""

import re
from typing import ClassVar, Sequence

from rater.core.domain import ItemView
from rater.generators.base import Generator
from rater.raters.rules import contains_words, normalised_words

MAX_WORDS = 12
FUNCTION_WORDS = {"och", "eller", "men", "som", "att", "i", "på", "av", "för", "till", "med", "om", "från", "den",
                  "det", "de", "en", "ett", "är", "har", "kan", "ska", "var", "så", "när", "där", "inte", "vid"}
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_TOKEN = re.compile(r"\d{1,3}(?: \d{3})+|\w[\w\-:./]*\w|\w|[,;:()\"]")  # "15 000" is one token


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _tokens(sentence: str) -> list[str]:
    return _TOKEN.findall(sentence)


class Candidate:
    __slots__ = ("text", "words", "position", "points")

    def __init__(self, text: str, position: int, points: int) -> None:
        self.text, self.words, self.position, self.points = text, normalised_words(text), position, points


def answer_spans(words: list[str], answer: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the answer stands among the sentence's words, as [start, end) ranges of word indices."""
    flat: list[str] = []
    owner: list[int] = []
    for index, word in enumerate(words):
        for part in normalised_words(word):
            flat.append(part)
            owner.append(index)
    n = len(answer)
    if not n:
        return []
    return [(owner[i], owner[i + n - 1] + 1) for i in range(len(flat) - n + 1) if tuple(flat[i:i + n]) == answer]


def candidates(item: ItemView) -> list[Candidate]:
    answer = normalised_words(item.answer)
    answer_tokens = item.answer.split()
    first_answer_word = answer[0] if answer else ""
    last_answer_word = answer[-1] if answer else ""
    found: list[Candidate] = []
    position = 0
    for sentence in _SENTENCE.findall(item.context):
        tokens = _tokens(sentence)
        words = [t for t in tokens if t not in ",;:()\""]
        blocked = answer_spans(words, answer)
        clause_starts = {0} | {len([t for t in tokens[:k] if t not in ",;:()\""]) for k, t in enumerate(tokens) if t in ",;:"}
        clause_ends = {len(words)} | clause_starts
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + MAX_WORDS) + 1):
                if any(start < b_end and b_start < end for b_start, b_end in blocked):
                    continue
                span = words[start:end]
                text = " ".join(span)
                first, last = span[0].casefold(), span[-1].casefold()
                if (first in FUNCTION_WORDS and first != first_answer_word) or \
                        (last in FUNCTION_WORDS and last != last_answer_word):
                    continue
                if _has_digit(text) != _has_digit(item.answer):
                    continue
                points = 3 * (first == first_answer_word) + 2 * _has_digit(text) + \
                    (span[0][:1].isupper() == item.answer[:1].isupper()) + \
                    (start in clause_starts and end in clause_ends) - abs(len(span) - len(answer_tokens))
                found.append(Candidate(text, position + start, points))
        position += len(words)
    return found


def content_words(words: tuple[str, ...]) -> set[str]:
    return {w for w in words if w not in FUNCTION_WORDS}


def is_usable(candidate: Candidate, answer: tuple[str, ...]) -> bool:
    """Not the answer, not inside it, not containing it, and not a rewording of it."""
    if not candidate.words or candidate.words == answer:
        return False
    if contains_words(candidate.words, answer) or contains_words(answer, candidate.words):
        return False
    mine, shared = content_words(candidate.words), content_words(candidate.words) & content_words(answer)
    return len(shared) < 2 and not (mine and mine <= shared)


def pick(item: ItemView, num: int) -> list[str]:
    answer = normalised_words(item.answer)
    existing = {normalised_words(d.text) for d in item.distractors}  # the item's own, from any source
    chosen: list[Candidate] = []
    for candidate in sorted(candidates(item), key=lambda c: (-c.points, c.position)):
        if len(chosen) == num:
            break
        if not is_usable(candidate, answer) or candidate.words in existing:
            continue
        if any(contains_words(c.words, candidate.words) or contains_words(candidate.words, c.words) for c in chosen):
            continue
        chosen.append(candidate)
    return [c.text for c in chosen]


class BaselineGenerator(Generator):
    name: ClassVar[str] = "baseline"
    default_batch_size: ClassVar[int] = 64

    async def generate(self, items: Sequence[ItemView], num: int) -> list[list[str]]:
        return [pick(item, num) for item in items]
