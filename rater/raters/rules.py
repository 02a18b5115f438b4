"""The rules rater: cheap, offline and deterministic checks that reject obviously unusable distractors."""

import re
from typing import ClassVar

from rater.core.domain import ItemView, Judgement, RaterKind, Reason
from rater.raters.base import Rater

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalised_words(text: str) -> tuple[str, ...]:
    """Lower-cased words without punctuation: "Hon  är 190 cm." -> ("hon", "är", "190", "cm")."""
    return tuple(_PUNCTUATION.sub(" ", text.casefold()).split())


def contains_words(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """Whether `shorter` occurs as a run of whole words in `longer` ("10" is not inside "100")."""
    if not shorter or len(shorter) > len(longer):
        return False
    return any(longer[i:i + len(shorter)] == shorter for i in range(len(longer) - len(shorter) + 1))


def check_distractor(text: str, answer: tuple[str, ...], earlier: list[tuple[str, ...]]) -> tuple[str, str] | None:
    """(reason, rationale) when a rule rejects the distractor, None when it passes."""
    words = normalised_words(text)
    if not words:
        return Reason.unreasonable, "empty distractor"
    if words == answer:
        return Reason.identical, "identical to the answer"
    if contains_words(words, answer):
        return Reason.not_wrong, "contains the answer"
    if contains_words(answer, words):
        return Reason.not_wrong, "is part of the answer"
    if words in earlier:
        return Reason.identical, f"duplicates distractor {earlier.index(words) + 1}"
    return None


class RulesRater(Rater):
    """Rejects empty distractors, the answer itself, ones containing or inside it, and duplicates."""

    kind: ClassVar[str] = RaterKind.rule
    default_name: ClassVar[str] = "rules"
    max_concurrency = 8

    async def rate(self, item: ItemView) -> list[Judgement]:
        answer = normalised_words(item.answer)
        earlier: list[tuple[str, ...]] = []
        judgements = []
        for distractor in item.distractors:
            verdict = check_distractor(distractor.text, answer, earlier)
            earlier.append(normalised_words(distractor.text))
            reason, rationale = verdict if verdict else (None, "passes every rule")
            judgements.append(Judgement(distractor.id, verdict is None, reason=reason, rationale=rationale))
        return judgements

    def settings(self) -> dict:
        return {"rules": ["empty", "identical", "contains answer", "inside answer", "duplicate"]}
