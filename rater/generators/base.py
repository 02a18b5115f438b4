"""The Generator interface and the generation loop shared by model-backed generators (SPEC section 3)."""

import random
import re
from abc import ABC, abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Sequence

from rater.core.domain import ItemView
from rater.core.errors import RaterError
from rater.core.prompts import parse_false_tags, render_false, render_instruction
from rater.raters.rules import normalised_words

MAX_ATTEMPTS = 8


class Generator(ABC):
    """Returns up to `num` distinct distractors per item; `batch_size` items are handed over at once."""

    name: ClassVar[str]
    default_batch_size: ClassVar[int] = 8
    failed_requests: int = 0  # model generators count requests that failed after every retry
    stopped: RaterError | None = None  # set by a model generator whose server stopped answering mid-batch

    @classmethod
    def from_options(cls, **options: Any) -> "Generator":
        """Build from the CLI's options (model, adapter, base_url, ...); ignore the ones that do not apply."""
        return cls()

    @abstractmethod
    async def generate(self, items: Sequence[ItemView], num: int) -> list[list[str]]:
        """Up to `num` new distractor texts per item, in the order of `items`; never a text the item already has
        among `item.distractors` (any source), which the store would drop anyway."""

    async def close(self) -> None:
        """Release clients or models."""


def continuation_prompt(item: ItemView, found: Sequence[str], rng: random.Random) -> str:
    """The published instruction, followed by the distractors found so far as `<false>` tags in shuffled order."""
    shown = list(found)
    rng.shuffle(shown)
    return render_instruction(item.context, item.question, item.answer) + "".join(render_false(d) for d in shown)


_TAG_DEBRIS = re.compile(r"</?\s*(false|true|context|question)\b|\b(false|true)>|\n")


def accept_new(found: list[str], candidates: Sequence[str], item: ItemView, num: int) -> None:
    """Add candidates that are non-empty, not the answer, not a repeat of one found or of one the item already has
    (ignoring case and punctuation) and not broken markup (tag fragments or line breaks inside a tag)."""
    answer = item.answer
    seen = {normalised_words(d) for d in found} | {normalised_words(d.text) for d in item.distractors}
    answer_words = normalised_words(answer)
    for text in candidates:
        words = normalised_words(text)
        if len(found) >= num:
            return
        if words and words != answer_words and words not in seen and not _TAG_DEBRIS.search(text):
            seen.add(words)
            found.append(text.strip())


async def generate_with_loop(items: Sequence[ItemView], num: int,
                             complete: Callable[[list[str]], Awaitable[list[str]]],
                             seed: int = 0) -> list[list[str]]:
    """SPEC section 3: prompt, parse every `<false>` tag, re-prompt with what was found (shuffled) until `num`
    distinct distractors or `MAX_ATTEMPTS` attempts. `complete` maps prompts to continuations, batched."""
    found: list[list[str]] = [[] for _ in items]
    rngs = [random.Random(f"{seed}:{item.id}") for item in items]
    for _ in range(MAX_ATTEMPTS):
        open_items = [i for i, f in enumerate(found) if len(f) < num]
        if not open_items:
            break
        prompts = [continuation_prompt(items[i], found[i], rngs[i]) for i in open_items]
        for i, text in zip(open_items, await complete(prompts)):
            accept_new(found[i], parse_false_tags(text or ""), items[i], num)
    return found
