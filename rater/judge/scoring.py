"""Turning a judge's answer into scores, and scores into acceptances (SPEC section 5 rule by default)."""

import json
import re
from dataclasses import dataclass

_DOLLAR_LIST = re.compile(r"\$\s*(\[[^\$\]]*\])\s*\$")


class ParseFailure(ValueError):
    """The answer holds no usable list of scores."""


def parse_scores(text: str, expected: int) -> list[float]:
    """The last `$[...]$` list (or a JSON object with `scores`), checked: `expected` numbers in 1-5, halves allowed."""
    found = _DOLLAR_LIST.findall(text or "")
    if found:
        raw = found[-1]
    else:
        raw = _json_scores(text)
    try:
        scores = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ParseFailure(f"the score list {raw!r} is not valid JSON") from exc
    if not isinstance(scores, list) or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores):
        raise ParseFailure(f"the scores {raw!r} are not a list of numbers")
    if len(scores) != expected:
        raise ParseFailure(f"{len(scores)} scores for {expected} distractors")
    bad = [s for s in scores if not 1 <= s <= 5 or (s * 2) != int(s * 2)]
    if bad:
        raise ParseFailure(f"scores {bad} are outside 1-5 in steps of 0.5")
    return [float(s) for s in scores]


def _json_scores(text: str) -> str:
    """The `scores` of a structured (JSON object) answer, as JSON text."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ParseFailure("no $[...]$ list and no JSON object in the answer") from exc
    if not isinstance(data, dict) or "scores" not in data:
        raise ParseFailure("the JSON answer has no 'scores' field")
    return json.dumps(data["scores"])


def rationale_of(text: str) -> str:
    """The reasoning: a structured answer's `reasoning` field, else the text before the last score list."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("reasoning"), str):
            return data["reasoning"].strip()
    except (json.JSONDecodeError, TypeError):
        pass
    matches = list(_DOLLAR_LIST.finditer(text or ""))
    return (text[:matches[-1].start()] if matches else text or "").strip()


@dataclass(frozen=True)
class Acceptance:
    """`weighted`: limit = center + (mean - center) * weight (SPEC: 2.5 and 0.5); `threshold`: a fixed limit.
    A distractor is accepted when its score is above the limit."""

    rule: str = "weighted"
    center: float = 2.5
    weight: float = 0.5
    threshold: float = 3.0

    def limit(self, scores: list[float]) -> float:
        if self.rule == "threshold":
            return self.threshold
        mean = sum(scores) / len(scores)
        return self.center + (mean - self.center) * self.weight

    def as_dict(self) -> dict:
        if self.rule == "threshold":
            return {"rule": "threshold", "threshold": self.threshold}
        return {"rule": "weighted", "center": self.center, "weight": self.weight}
