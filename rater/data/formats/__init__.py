"""The import formats: detection and parsing of each file into an ImportBatch."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rater.core.errors import InputError
from rater.data.formats import alpaca, annotations, evaluation, swequad
from rater.data.formats.common import read_json
from rater.data.records import ImportBatch


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    detect: Callable[[Any], bool]
    parse: Callable[[Any, Path, str], ImportBatch]


# Detection tries these in order; the first whose shape matches wins.
FORMATS = {
    f.name: f for f in (
        Format(swequad.NAME, "SweQUAD-MC {\"data\": [{context, question, choices}]}", swequad.detect, swequad.parse),
        Format(annotations.NAME, "annotation-tool export {context, annotations: [[...]]}", annotations.detect,
               annotations.parse),
        Format(evaluation.EVALUATION, "evaluation set [{context, question, answer, distractors, sources}]",
               evaluation.detect_evaluation, evaluation.parse_evaluation),
        Format(evaluation.ITEMS, "rater items [{context, question, answer, distractors[, source, split]}]",
               evaluation.detect_items, evaluation.parse_items),
        Format(alpaca.PREF, "preference rows [{instruction, input, output: [chosen, rejected]}]",
               alpaca.detect_pref, alpaca.parse_pref),
        Format(alpaca.SFT, "Alpaca SFT rows [{instruction, input, output}]", alpaca.detect_sft, alpaca.parse_sft),
    )
}


def format_list() -> str:
    return "; ".join(f"{f.name} ({f.description})" for f in FORMATS.values())


def detect_format(data: Any, path: Path) -> Format:
    for candidate in FORMATS.values():
        if candidate.detect(data):
            return candidate
    raise InputError(f"{path}: the format could not be recognised.",
                     f"pass --format with one of: {format_list()}")


def parse_file(path: Path, format_name: str = "auto", dataset: str | None = None) -> ImportBatch:
    """Read and check a whole file; nothing touches the database here, so a broken record imports nothing."""
    data = read_json(path)
    if format_name == "auto":
        chosen = detect_format(data, path)
    elif format_name in FORMATS:
        chosen = FORMATS[format_name]
        if not chosen.detect(data):
            raise InputError(f"{path}: does not look like {chosen.name} ({chosen.description}).",
                             "check the file or use --format auto")
    else:
        raise InputError(f"Unknown format {format_name!r}.", f"use auto or one of: {', '.join(FORMATS)}")
    return chosen.parse(data, path, dataset or _default_dataset(chosen.name, path))


def _default_dataset(format_name: str, path: Path) -> str:
    return "swequad-mc" if format_name == swequad.NAME else path.stem
