"""Building the judge's messages: our prompt in instructions/, the item's question, answer and distractors."""

import hashlib
import json
from pathlib import Path

from rater.core.errors import InputError
from rater.core.paths import instructions_text

STRUCTURED_SCHEMA = {
    "name": "distractor_scores",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "description": "Step-by-step reasoning about each distractor."},
            "scores": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["reasoning", "scores"],
        "additionalProperties": False,
    },
}
STRUCTURED_NOTE = ("\n\nAnswer with a JSON object: first 'reasoning' (your step-by-step reasoning), then "
                   "'scores' (one number per distractor, in order).")


def load_template(path: Path | None = None) -> str:
    if path is None:
        return instructions_text("judge_prompt.md")
    if not path.exists():
        raise InputError(f"Prompt file {path} does not exist.", "check the --prompt path")
    template = path.read_text(encoding="utf-8")
    missing = [f for f in ("{{question}}", "{{answer}}", "{{distractors}}") if f not in template]
    if missing:
        raise InputError(f"Prompt file {path} lacks {', '.join(missing)}.", "add those placeholders")
    return template


def render_prompt(template: str, *, question: str, answer: str, distractors: list[str], context: str | None,
                  structured: bool = False) -> str:
    numbered = "\n".join(f"{n}. {text}" for n, text in enumerate(distractors, 1))
    context_block = f"\nText: {context}\n" if context else ""
    text = (template.replace("{{context}}", context_block).replace("{{question}}", question)
            .replace("{{answer}}", answer).replace("{{distractors}}", numbered))
    return text + (STRUCTURED_NOTE if structured else "")


def request_key(model: str, messages: list[dict], params: dict) -> str:
    """The cache key of one request: a hash of model, messages and parameters."""
    payload = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def prompt_sha256(template: str, *, with_context: bool, structured: bool) -> str:
    """What a calibration is tied to besides the model: the prompt's template and the options that shape the
    answer (the reading text sent or not, a JSON answer asked for or not)."""
    return request_key("", [{"content": template}], {"with_context": with_context, "structured": structured})
