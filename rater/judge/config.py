"""Named judges from a config file, so a new endpoint is configuration, not code; and the API key lookup."""

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from rater.core.errors import InputError
from rater.core.paths import rater_home
from rater.judge.scoring import Acceptance
from rater.llm.keys import DEFAULT_KEY_ENV, read_api_key


def config_path() -> Path:
    return rater_home() / "judges.yaml"


@dataclass(frozen=True)
class JudgeConfig:
    """One judge: `judges: {NAME: {model, base_url, api_key_env, api_key_file, price_in, price_out, structured,
    acceptance: {rule: weighted|threshold, ...}}}` in $RATER_HOME/judges.yaml. Prices are per million tokens."""

    name: str
    model: str
    base_url: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV
    api_key_file: str | None = None
    price_in: float = 0.0
    price_out: float = 0.0
    structured: bool = False
    acceptance: Acceptance = field(default_factory=Acceptance)


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}", "fix the judges file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("judges", {}), dict):
        raise InputError(f"{path} must hold a mapping 'judges: {{NAME: {{model: ...}}}}'.", "fix the judges file")
    return data


def load_judge(name: str, path: Path | None = None) -> JudgeConfig:
    path = path or config_path()
    judges = _read(path).get("judges", {})
    if name not in judges:
        known = ", ".join(sorted(judges)) or "none"
        raise InputError(f"No judge named {name!r} in {path}.", f"judges defined there: {known}; or pass --model")
    entry = dict(judges[name])
    if "model" not in entry:
        raise InputError(f"Judge {name!r} in {path} has no model.", "add 'model: NAME' to it")
    acceptance = Acceptance.from_dict(entry.pop("acceptance", None))
    allowed = set(JudgeConfig.__dataclass_fields__) - {"name", "acceptance"}
    unknown = set(entry) - allowed
    if unknown:
        raise InputError(f"Judge {name!r} in {path} has unknown fields: {', '.join(sorted(unknown))}.",
                         f"allowed: {', '.join(sorted(allowed | {'acceptance'}))}")
    return JudgeConfig(name=name, acceptance=acceptance, **entry)


def find_judge(name: str, path: Path | None = None) -> JudgeConfig | None:
    """The named judge when the file defines it, else None."""
    path = path or config_path()
    return load_judge(name, path) if name in _read(path).get("judges", {}) else None


def save_acceptance(name: str, acceptance: Acceptance, path: Path | None = None, **endpoint) -> Path:
    """Store a (calibrated) acceptance rule in the judge's entry, creating the entry (with `endpoint` fields such
    as model and base_url) when needed."""
    path = path or config_path()
    data = _read(path)
    entry = data.setdefault("judges", {}).setdefault(name, {})
    for key, value in endpoint.items():
        if value is not None:
            entry.setdefault(key, value)
    entry["acceptance"] = acceptance.as_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=True, allow_unicode=True), encoding="utf-8")
    return path


def with_overrides(config: JudgeConfig, **overrides) -> JudgeConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def api_key(config: JudgeConfig) -> str:
    return read_api_key(config.api_key_env, config.api_key_file)
