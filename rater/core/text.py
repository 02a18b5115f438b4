"""Counts in words: "1 record", "2 records"."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun, singular for exactly one ("1 source", "3 sources"; `many` for irregular plurals)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
