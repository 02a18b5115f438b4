"""Typed configuration: judges.yaml and training recipes stop at a typo with the file, entry and key named."""

import re

import pytest

from rater.core.errors import InputError
from training.settings import resolve


def flat(text: str) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def judges(tmp_path, monkeypatch):
    monkeypatch.setenv("RATER_HOME", str(tmp_path))
    path = tmp_path / "judges.yaml"

    def write(entry: str):
        path.write_text("judges:\n  gpt4:\n" + entry)
        return path
    return write


@pytest.mark.parametrize("entry, needles", [
    ("    model: m\n    acceptance: {rule: treshold}\n", ["'gpt4'", "'acceptance.rule'", "'weighted' or 'threshold'", "'treshold'"]),
    ("    model: m\n    price_in: ten\n", ["'gpt4'", "'price_in'", "valid number", "'ten'"]),
    ("    model: m\n    max_tokns: 10\n", ["'gpt4'", "'max_tokns'", "unknown key"]),
    ("    model: m\n    acceptance: {rule: threshold, threshold: 9}\n", ["'acceptance.threshold'", "less than or equal to 5"]),
    ("    just a string\n", ["'gpt4'", "valid dictionary"]),
    ("    price_in: 1\n", ["'gpt4'", "'model'", "Field required"]),
], ids=["rule-typo", "price-not-a-number", "unknown-key", "threshold-too-high", "not-a-mapping", "model-missing"])
def test_a_judges_file_typo_stops_with_file_entry_and_key(cli, judges, entry, needles):
    path = judges(entry)
    cli("demo")
    result = cli("judge", "--judge", "gpt4", ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    message = flat(result.stderr)
    assert path.name in "".join(message.split())  # the panel may wrap the path
    for needle in needles:
        assert needle in message, message


def test_invalid_yaml_names_the_line(cli, judges):
    judges("    model: [unclosed\n")
    cli("demo")
    result = cli("judge", "--judge", "gpt4", ok=False)
    assert result.exit_code == 2 and "not valid YAML at line" in flat(result.stderr)


def test_a_bad_calibrations_file_is_named_too(cli, judges, tmp_path):
    judges("    model: m\n")
    (tmp_path / "calibrations.yaml").write_text("calibrations:\n  gpt4: {acceptance: {rule: weighted, weigth: 1}}\n")
    cli("demo")
    result = cli("judge", "--judge", "gpt4", ok=False)
    assert result.exit_code == 2 and "'acceptance.weigth': unknown key" in flat(result.stderr)
    assert "calibrations.yaml" in "".join(flat(result.stderr).split())  # the panel may wrap the path


def test_recipe_values_are_typed(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stage: dpo\nlearning_rate: 5e-5\nepochs: 2\ntarget_modules: [q_proj, k_proj]\n")
    settings = resolve("dpo", recipe)
    assert settings.learning_rate == 5e-5 and isinstance(settings.learning_rate, float)
    assert settings.target_modules == ("q_proj", "k_proj") and settings.save_steps == 200
    assert resolve("dpo", recipe, learning_rate=1e-6).learning_rate == 1e-6


@pytest.mark.parametrize("text, needles", [
    ("learning_rate: fast\n", ["'learning_rate'", "'fast'"]),
    ("lerning_rate: 1e-5\n", ["'lerning_rate'", "unknown key"]),
    ("stage: kto\n", ["for `rater train kto`, not dpo"]),
    ("batch_size: 0\n", ["batch_size", "greater than or equal to 1"]),
], ids=["not-a-number", "unknown-key", "other-stage", "batch-size-zero"])
def test_a_recipe_typo_stops_with_file_and_key(tmp_path, text, needles):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(InputError) as raised:
        resolve("dpo", recipe)
    for needle in needles:
        assert needle in str(raised.value), str(raised.value)


def test_a_recipe_typo_exits_2_through_the_cli(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: fast\n")
    result = cli("train", "sft", "--model", tmp_path, "-o", tmp_path / "out", "--recipe", recipe, ok=False)
    assert result.exit_code == 2 and "'learning_rate'" in flat(result.stderr)
