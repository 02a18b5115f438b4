"""The published prompt format: `<context> C </context>` instructions and `<false> D </false>` lines, byte-exact."""

import re

_INSTRUCTION = re.compile(
    r"\A<context> (?P<context>.*) </context>\n<question> (?P<question>.*) </question>\n"
    r"<true> (?P<answer>.*) </true>\n\Z",
    re.DOTALL,
)
_FALSE = re.compile(r"<false>(.*?)</false>", re.DOTALL)


def render_instruction(context: str, question: str, answer: str) -> str:
    return f"<context> {context} </context>\n<question> {question} </question>\n<true> {answer} </true>\n"


def render_false(distractor: str) -> str:
    return f"<false> {distractor} </false>\n"


def render_output(distractors: list[str]) -> str:
    return "".join(render_false(d) for d in distractors)


def parse_instruction(instruction: str) -> tuple[str, str, str] | None:
    """(context, question, answer) of a published instruction, or None when it is not in that form."""
    match = _INSTRUCTION.match(instruction)
    if match is None:
        return None
    return match["context"], match["question"], match["answer"]


def parse_false_tags(text: str) -> list[str]:
    """Every `<false> ... </false>` text, stripped, in order (empty ones included)."""
    return [found.strip() for found in _FALSE.findall(text)]
