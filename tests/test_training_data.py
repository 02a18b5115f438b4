"""Test items never become training data by default: exports and training stages take the train split, say how
many rows come from test items when asked for them, refuse an empty split, and report what a trainer kept."""

import json

import pytest


def flat(result) -> str:
    return " ".join((result.output + result.stderr).replace("│", " ").split())


@pytest.fixture
def study(cli, tmp_path):
    """8 train items and 4 test items, each with a distractor the rules reject (it is the answer) and three they
    accept, rated by the rules rater: every item gives one preference pair and four KTO rows."""
    rows = [{"context": f"Text {n}." + " Mer text." * n, "question": f"Fråga {n}?", "answer": f"svar {n}",
             "distractors": [f"svar {n} och mer", f"fel {n} a", f"fel {n} b", f"fel {n} c"],
             "split": "train" if n < 8 else "test"} for n in range(12)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cli("import", path)
    cli("judge", "--rater", "rules")


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def questions(rows: list[dict]) -> set[str]:
    return {row["prompt"].split("<question> ")[1].split(" </question>")[0] for row in rows}


def test_exports_default_to_the_train_split(cli, study, tmp_path):
    cli("export", "pref", "--format", "trl", "-o", tmp_path / "pref.jsonl")
    cli("export", "kto", "-o", tmp_path / "kto.jsonl")
    cli("export", "sft", "--format", "trl", "-o", tmp_path / "sft.jsonl")
    train = {f"Fråga {n}?" for n in range(8)}
    for name, per_item in (("pref", 1), ("kto", 4), ("sft", 1)):
        rows = jsonl(tmp_path / f"{name}.jsonl")
        assert questions(rows) == train and len(rows) == 8 * per_item, name


def test_asking_for_test_items_by_name_warns_with_the_count(cli, study, tmp_path):
    result = cli("export", "kto", "--split", "all", "-o", tmp_path / "kto.jsonl")
    assert len(jsonl(tmp_path / "kto.jsonl")) == 48
    assert "Warning: 16 rows of 48 come from test items (--split all)" in flat(result)
    result = cli("export", "pref", "--split", "test", "--format", "trl", "-o", tmp_path / "pref.jsonl")
    assert "Warning: 4 rows of 4 come from test items (--split test)" in flat(result)
    assert "test items" not in flat(cli("export", "pref", "--format", "trl", "-o", tmp_path / "train.jsonl"))


def test_an_empty_split_exits_2_naming_the_splits_that_have_some(cli, study, tmp_path):
    result = cli("export", "pref", "--split", "dev", "-o", tmp_path / "pref.json", ok=False)
    assert result.exit_code == 2 and not (tmp_path / "pref.json").exists()
    assert "No preference pairs (preference ratings) in split 'dev' (there are some in: test 16, train 32)" \
        in flat(result)
    assert cli("export", "kto", "--split", "bogus", "-o", tmp_path / "k.jsonl", ok=False).exit_code == 2
    sft = cli("export", "sft", "--source", "nosuch", "-o", tmp_path / "s.json", ok=False)
    assert sft.exit_code == 2 and "sources here: human" in flat(sft)


def test_an_unsplit_study_is_told_to_split(cli, tmp_path):
    cli("demo")  # the demo's items are all test items: nothing in train
    cli("judge", "--rater", "rules")
    result = cli("export", "kto", "-o", tmp_path / "kto.jsonl", ok=False)
    assert result.exit_code == 2 and "run `rater split --resplit`" in flat(result)
    cli("split")  # by default the items keep the test split they came with
    assert cli("export", "kto", "-o", tmp_path / "kto.jsonl", ok=False).exit_code == 2
    cli("split", "--resplit")  # as the hint says: now some are train items
    cli("export", "kto", "-o", tmp_path / "kto.jsonl")


def test_a_file_suffix_must_match_its_format(cli, study, tmp_path):
    result = cli("export", "kto", "--format", "trl", "-o", tmp_path / "x.json", ok=False)
    assert result.exit_code == 2 and "name the file x.jsonl" in flat(result) and not (tmp_path / "x.json").exists()
    result = cli("export", "pref", "--format", "llamafactory", "-o", tmp_path / "x.jsonl", ok=False)
    assert result.exit_code == 2 and "name the file x.json" in flat(result)


def test_export_warns_about_rows_longer_than_max_length(cli, study, tmp_path):
    result = cli("export", "kto", "--max-length", "20", "-o", tmp_path / "kto.jsonl")
    assert "Warning: 32 rows are longer than --max-length 20 tokens (estimated at 3 characters a token)" \
        in flat(result)
    assert "longer than" not in flat(cli("export", "kto", "--max-length", "4000", "-o", tmp_path / "k2.jsonl"))


def test_kto_imbalance_is_warned_about(cli, tmp_path):
    rows = [{"context": f"Text {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}", "split": "train",
             "distractors": [f"fel {n} {k}" for k in range(6)] + ([f"svar {n} och mer"] if n == 0 else [])} for n in range(10)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cli("import", path)
    cli("judge", "--rater", "rules")
    result = cli("export", "kto", "-o", tmp_path / "kto.jsonl")
    assert "Warning: only 1 of 61 KTO rows (1.6%) are rejected" in flat(result)


def manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_train_dpo_and_kto_honour_the_split_and_report_what_they_kept(cli, study, tiny_model, tmp_path):
    dpo = cli("train", "dpo", "--model", tiny_model, "-o", tmp_path / "dpo", "--split", "train", "--max-steps", "1",
              "--grad-accum", "1")
    assert manifest(tmp_path / "dpo")["rows_given"] == 8  # the 8 train items' pairs, none of the 4 test items'
    assert "8 rows given, 8 kept" in flat(dpo)
    kto = cli("train", "kto", "--model", tiny_model, "-o", tmp_path / "kto", "--max-steps", "1", "--grad-accum", "1",
              "--batch-size", "2")
    assert manifest(tmp_path / "kto")["rows_given"] == 32 and "test items" not in flat(kto)
    everything = cli("train", "kto", "--model", tiny_model, "-o", tmp_path / "kto-all", "--split", "all",
                     "--max-steps", "1", "--grad-accum", "1", "--batch-size", "2")
    assert manifest(tmp_path / "kto-all")["rows_given"] == 48
    assert "Warning: 16 of 48 training rows come from test items (--split all)" in flat(everything)


def test_rows_longer_than_max_length_are_left_out_and_counted(cli, study, tiny_model, tmp_path):
    from training.data import row_tokens, sft_from_store
    from training.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    lengths = sorted(row_tokens(row, tokenizer) for row in sft_from_store(cli_engine(cli), split="train"))
    limit = lengths[3]  # the 4 shortest rows fit
    kept = sum(n <= limit for n in lengths)
    result = cli("train", "sft", "--model", tiny_model, "-o", tmp_path / "sft", "--max-steps", "1", "--max-length",
                 limit)
    found = manifest(tmp_path / "sft")
    assert (found["rows_given"], found["rows_kept"], found["rows_dropped"]) == (8, kept, 8 - kept)
    assert 0 < kept < 8 and found["dropped_reason"] == f"longer than max_length {limit} tokens"
    assert f"8 rows given, {kept} kept, {8 - kept} left out (longer than --max-length {limit} tokens)" in flat(result)
    too_short = cli("train", "sft", "--model", tiny_model, "-o", tmp_path / "none", "--max-length", "8", ok=False)
    assert too_short.exit_code == 2 and "Every one of the 8 training rows is longer" in flat(too_short)


def cli_engine(cli):
    from rater.store.engine import create_store_engine, database_url

    return create_store_engine(database_url(str(cli.db_path)))
