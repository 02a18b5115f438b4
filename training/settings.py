"""Training settings: defaults from the published runs (SPEC section 6), typed YAML recipes, command-line overrides."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rater.core.config import read_yaml, validated
from rater.core.errors import InputError

Stage = Literal["sft", "dpo", "kto"]


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(5e-5, gt=0)
    epochs: float = Field(5.0, gt=0)
    max_steps: int = -1  # > 0 stops early (tests, smoke runs)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(4, ge=1)
    scheduler: str = "cosine"
    save_steps: int = Field(400, ge=1)
    logging_steps: int = Field(1, ge=1)
    lora_r: int = Field(8, ge=1)  # LLaMA-Factory's defaults (the published runs used its CLI): rank 8, alpha 16,
    lora_alpha: int = Field(16, ge=1)  # dropout 0
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    quantize: bool = True  # 4-bit NF4 with double quantization where supported
    max_length: int = Field(2048, ge=8)
    beta: float = Field(0.1, gt=0)  # DPO / KTO
    seed: int = 0

    def as_dict(self) -> dict:
        data = self.model_dump()
        data["target_modules"] = list(self.target_modules)
        return data


class Recipe(BaseModel):
    """A recipe file: any of the settings, plus which stage it is for and notes."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage | None = None
    base_model: str | None = None
    notes: str | None = None
    learning_rate: float | None = None
    epochs: float | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    scheduler: str | None = None
    save_steps: int | None = None
    logging_steps: int | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    target_modules: tuple[str, ...] | None = None
    quantize: bool | None = None
    max_length: int | None = None
    beta: float | None = None
    seed: int | None = None


STAGE_DEFAULTS = {
    "sft": TrainSettings(),
    "dpo": TrainSettings(learning_rate=1e-5, epochs=1.0, save_steps=200),
    "kto": TrainSettings(learning_rate=1e-5, epochs=1.0, save_steps=200, batch_size=2, grad_accum=2),
}


def load_recipe(path: Path, stage: str) -> dict:
    """The settings a recipe sets; a recipe written for another stage is refused."""
    if not path.exists():
        raise InputError(f"Recipe {path} does not exist.", "see training/recipes/ for examples")
    recipe = validated(Recipe, read_yaml(path, "recipe") or {}, path, "recipe")
    if recipe.stage and recipe.stage != stage:
        raise InputError(f"Recipe {path} is for `rater train {recipe.stage}`, not {stage}.",
                         f"pass a {stage} recipe, or remove its `stage: {recipe.stage}` line")
    return recipe.model_dump(exclude_none=True, exclude={"stage", "base_model", "notes"})


def resolve(stage: str, recipe: Path | None = None, **overrides) -> TrainSettings:
    """Stage defaults, then the recipe, then the options actually given; every value checked."""
    values = STAGE_DEFAULTS[stage].model_dump()
    if recipe:
        values.update(load_recipe(recipe, stage))
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(given.get("target_modules"), str):
        given["target_modules"] = tuple(m.strip() for m in given["target_modules"].split(",") if m.strip())
    values.update(given)
    try:
        return TrainSettings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(f"Training setting {'.'.join(map(str, error['loc']))}: {error['msg']} "
                         f"(found {error['input']!r}).", "fix the option or the recipe") from None
