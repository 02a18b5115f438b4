"""Training settings: defaults from the published runs (SPEC section 6), YAML recipes, command-line overrides."""

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from rater.core.errors import InputError


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 5e-5
    epochs: float = 5.0
    max_steps: int = -1  # > 0 stops early (tests, smoke runs)
    batch_size: int = 1
    grad_accum: int = 4
    scheduler: str = "cosine"
    save_steps: int = 400
    logging_steps: int = 1
    lora_r: int = 8  # LLaMA-Factory's defaults (the published runs used its CLI): rank 8, alpha 16, dropout 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    quantize: bool = True  # 4-bit NF4 with double quantization where supported
    max_length: int = 2048
    beta: float = 0.1  # DPO / KTO
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


STAGE_DEFAULTS = {
    "sft": TrainSettings(),
    "dpo": TrainSettings(learning_rate=1e-5, epochs=1.0, save_steps=200),
    "kto": TrainSettings(learning_rate=1e-5, epochs=1.0, save_steps=200, batch_size=2, grad_accum=2),
}


def load_recipe(path: Path) -> dict:
    if not path.exists():
        raise InputError(f"Recipe {path} does not exist.", "see training/recipes/ for examples")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    known = {f.name for f in fields(TrainSettings)}
    unknown = set(data) - known - {"stage", "base_model", "notes"}
    if unknown:
        raise InputError(f"Recipe {path} has unknown keys: {', '.join(sorted(unknown))}.",
                         f"known keys: {', '.join(sorted(known))}")
    return {k: v for k, v in data.items() if k in known}


def resolve(stage: str, recipe: Path | None = None, **overrides) -> TrainSettings:
    """Stage defaults, then the recipe, then the options actually given."""
    settings = STAGE_DEFAULTS[stage]
    if recipe:
        settings = replace(settings, **load_recipe(recipe))
    given = {k: v for k, v in overrides.items() if v is not None}
    if "target_modules" in given and isinstance(given["target_modules"], str):
        given["target_modules"] = tuple(m.strip() for m in given["target_modules"].split(",") if m.strip())
    if isinstance(settings.target_modules, list):
        settings = replace(settings, target_modules=tuple(settings.target_modules))
    return replace(settings, **given)
