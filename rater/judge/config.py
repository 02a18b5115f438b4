"""Named judges: the user's $RATER_HOME/judges.yaml (typed, never rewritten by rater) and rater's own
calibrations.yaml beside it, which `rater calibrate --save` writes and every judge run reads."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from rater.core.config import read_yaml, validated
from rater.core.errors import InputError
from rater.core.paths import rater_home
from rater.judge.scoring import Acceptance
from rater.llm.keys import read_api_key

DEFAULT_MAX_TOKENS = 1024
CALIBRATIONS_HEADER = ("# Written by `rater calibrate --save`; rater reads it beside judges.yaml, and a rule here\n"
                       "# overrides the judge's acceptance there. Edit judges.yaml, not this file.\n")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptanceRule(_Strict):
    """`weighted`: accept above center + (mean - center) * weight; `threshold`: accept above a fixed limit."""

    rule: Literal["weighted", "threshold"] = "weighted"
    center: float = 2.5
    weight: float = Field(0.5, ge=0, le=1)
    threshold: float = Field(3.0, ge=1, le=5)

    @classmethod
    def of(cls, acceptance: Acceptance) -> "AcceptanceRule":
        return cls(**acceptance.as_dict())

    def to_acceptance(self) -> Acceptance:
        return Acceptance(**self.model_dump())


class JudgeEntry(_Strict):
    """One judge of judges.yaml. Prices are USD per million tokens."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None  # default OPENAI_API_KEY (optional with a base_url)
    api_key_file: str | None = None
    price_in: float = Field(0.0, ge=0)
    price_out: float = Field(0.0, ge=0)
    structured: bool = False
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, gt=0)
    acceptance: AcceptanceRule = AcceptanceRule()


class JudgesFile(_Strict):
    judges: dict[str, JudgeEntry] = {}


class Calibration(_Strict):
    acceptance: AcceptanceRule
    model: str | None = None
    base_url: str | None = None
    prompt_sha256: str | None = None  # the prompt and answer options it was fitted with (judge.prompt.prompt_sha256)
    against: list[str] = []
    saved_at: str | None = None

    def mismatch(self, *, model: str, base_url: str | None, prompt: str) -> str | None:
        """Why this calibration does not fit a run of `model` at `base_url` with this prompt hash; None when it
        does (a calibration saved before prompts were recorded fits any prompt)."""
        if self.model is not None and self.model != model:
            return f"it was fitted for model {self.model}, this run asks {model}"
        if (self.base_url or None) != (base_url or None):
            return f"it was fitted on {self.base_url or 'OpenAI'}, this run asks {base_url or 'OpenAI'}"
        if self.prompt_sha256 is not None and self.prompt_sha256 != prompt:
            return "it was fitted with another prompt (template, --with-context or --structured differ)"
        return None


class CalibrationsFile(_Strict):
    calibrations: dict[str, Calibration] = {}


@dataclass(frozen=True)
class JudgeConfig:
    """A judge resolved from judges.yaml, calibrations.yaml and the command line."""

    name: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    price_in: float = 0.0
    price_out: float = 0.0
    structured: bool = False
    max_tokens: int = DEFAULT_MAX_TOKENS
    acceptance: Acceptance = field(default_factory=Acceptance)
    acceptance_from: str = "default"  # where the acceptance rule came from, for the run's summary
    calibration: Calibration | None = None  # the saved calibration applied, if any
    uncalibrated: tuple[Acceptance, str] | None = None  # the rule (and its origin) the calibration replaced

    def fitted_to(self, *, prompt: str) -> "JudgeConfig":
        """This config for a run with this prompt hash: without its calibration (and saying why) when the
        calibration was fitted to another model, server or prompt."""
        if self.calibration is None or self.uncalibrated is None:
            return self
        why = self.calibration.mismatch(model=self.model, base_url=self.base_url, prompt=prompt)
        if why is None:
            return self
        acceptance, origin = self.uncalibrated
        return replace(self, acceptance=acceptance, calibration=None, uncalibrated=None,
                       acceptance_from=f"{origin}; the saved calibration is not applied: {why}")


def config_path() -> Path:
    return rater_home() / "judges.yaml"


def calibrations_path(config: Path | None = None) -> Path:
    return (config or config_path()).parent / "calibrations.yaml"


def _judges(path: Path) -> dict[str, JudgeEntry]:
    if not path.exists():
        return {}
    return validated(JudgesFile, read_yaml(path, "judges file") or {}, path, "judges file", entry_level=1).judges


def _calibrations(path: Path) -> dict[str, Calibration]:
    if not path.exists():
        return {}
    data = read_yaml(path, "calibrations file") or {}
    return validated(CalibrationsFile, data, path, "calibrations file (or delete it)", entry_level=1).calibrations


def load_judge(name: str, path: Path | None = None) -> JudgeConfig:
    path = path or config_path()
    judges = _judges(path)
    if name not in judges:
        known = ", ".join(sorted(judges)) or "none"
        raise InputError(f"No judge named {name!r} in {path}.", f"judges defined there: {known}; or pass --model")
    entry = judges[name]
    config = JudgeConfig(name=name, **{k: v for k, v in entry.model_dump().items() if k != "acceptance"},
                         acceptance=entry.acceptance.to_acceptance(), acceptance_from=f"{path.name}")
    return _calibrated(config, path)


def find_judge(name: str, model: str, path: Path | None = None) -> JudgeConfig:
    """The judge of a `--model` run named `name`: its judges.yaml entry when there is one, else the model alone;
    either way with a rule calibrated and saved under that name."""
    path = path or config_path()
    if name in _judges(path):
        return load_judge(name, path)
    return _calibrated(JudgeConfig(name=name, model=model), path)


def _calibrated(config: JudgeConfig, path: Path) -> JudgeConfig:
    saved = _calibrations(calibrations_path(path)).get(config.name)
    if saved is None:
        return config
    return replace(config, acceptance=saved.acceptance.to_acceptance(), calibration=saved,
                   uncalibrated=(config.acceptance, config.acceptance_from),
                   acceptance_from=f"calibrations.yaml ({saved.saved_at or 'saved'}, against {', '.join(saved.against)})")


def save_calibration(name: str, acceptance: Acceptance, config: Path | None = None, *, against: list[str],
                     model: str | None = None, base_url: str | None = None, prompt: str | None = None) -> Path:
    """Store a calibrated rule in rater's own calibrations.yaml beside the judges file; judges.yaml, which the
    user edits by hand, is left byte for byte as it was."""
    path = calibrations_path(config)
    entries = {k: v.model_dump(exclude_none=True) for k, v in _calibrations(path).items()}
    entries[name] = Calibration(acceptance=AcceptanceRule.of(acceptance), model=model, base_url=base_url,
                                prompt_sha256=prompt, against=against,
                                saved_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                                ).model_dump(exclude_none=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CALIBRATIONS_HEADER + yaml.safe_dump({"calibrations": entries}, sort_keys=True,
                                                        allow_unicode=True), encoding="utf-8")
    return path


def judge_prices(path: Path | None = None) -> dict[str, tuple[float, float]]:
    """(price in, price out) per judge name of the judges file, USD per million tokens; empty without a file (and
    never an error: the report only leaves cost out)."""
    try:
        return {name: (entry.price_in, entry.price_out) for name, entry in _judges(path or config_path()).items()}
    except InputError:
        return {}


def with_overrides(config: JudgeConfig, **overrides) -> JudgeConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def api_key(config: JudgeConfig) -> str:
    return read_api_key(config.api_key_env, config.api_key_file, base_url=config.base_url)
