"""Split by context, the token filter, and the layer contracts (rater never imports torch or Textual below the TUI)."""

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from rater.store.tables import Item

ROOT = Path(__file__).resolve().parents[1]


def splits_by_context(engine):
    with Session(engine) as session:
        rows = session.execute(select(Item.context_id, Item.split)).all()
    found = defaultdict(set)
    for context_id, split in rows:
        found[context_id].add(split)
    return found


def test_split_by_context_reaches_fraction(cli, engine, swequad_files):
    cli("import", *swequad_files)
    result = cli("split", "--resplit", "--test-fraction", "0.1", "--seed", "3", "--max-context-tokens", "100000")
    assert "excluded 0" in result.output
    found = splits_by_context(engine)
    assert all(len(s) == 1 for s in found.values()), "no context is in two splits"
    with Session(engine) as session:
        splits = list(session.execute(select(Item.split)).scalars())
    test = splits.count("test")
    assert 119 <= test <= 119 + 11  # at least 10 % of 1,190, overshooting by at most one context (<= 11 items)
    assert f"test {test}" in result.output


def test_split_is_deterministic_per_seed(cli, engine, swequad_files):
    cli("import", *swequad_files)
    cli("split", "--resplit", "--seed", "1")
    first = dict(splits_by_context(engine))
    cli("split", "--resplit", "--seed", "1")
    assert dict(splits_by_context(engine)) == first
    cli("split", "--resplit", "--seed", "2")
    assert dict(splits_by_context(engine)) != first


def test_keep_splits_keeps_swequads_official_splits_and_says_what_it_changed(cli, engine, swequad_files):
    """Items that came with splits (SweQUAD-MC's three files) keep them by default, and the command says so;
    --resplit splits everything again by context and says how many items changed."""
    cli("import", *swequad_files)
    result = cli("split", "--max-context-tokens", "100000")
    output = " ".join(result.output.split())
    assert "train 962, dev 126, test 102, excluded 0" in output and "0 items changed split, 1190 kept" in output
    assert "items kept the splits they had; --resplit splits everything again" in output
    assert "0 items changed split" in " ".join(cli("split", "--keep-splits", "--max-context-tokens",
                                                   "100000").output.split())
    assert "7 contexts in two splits" in output  # as the published files have them
    with Session(engine) as session:
        assert dict(session.execute(select(Item.split, func.count()).group_by(Item.split)).all()) == {
            "train": 962, "dev": 126, "test": 102}
    # The length filter excludes long texts; a later split that lets them back in gives them their files' splits
    excluded = " ".join(cli("split").output.split())
    assert "excluded 120" in excluded and "120 items changed split" in excluded
    back = " ".join(cli("split", "--max-context-tokens", "100000").output.split())
    assert "train 962, dev 126, test 102, excluded 0" in back and "120 items changed split" in back
    resplit = " ".join(cli("split", "--resplit", "--max-context-tokens", "100000").output.split())
    changed = int(resplit.split(" items changed split")[0].split()[-1])
    assert changed > 100 and "dev" not in resplit.split("(")[0]  # everything split again: no dev split left
    assert "everything split again by context; --keep-splits keeps" in resplit


def test_excluded_items_count_nowhere_unless_asked_for(cli, engine):
    cli("demo")
    result = cli("split", "--max-context-tokens", "70", "--test-fraction", "0")
    excluded = int(result.output.split("excluded ")[1].split()[0])
    assert 0 < excluded < 12
    cli("study", "overlap", "1")
    assert f"of {12 - excluded} items still lack 1 teacher's ratings" in " ".join(cli("study", "overlap").output.split())
    with Session(engine) as session:
        from rater.store.items import ItemFilter, count_items_with_distractors
        assert count_items_with_distractors(session) == 12 - excluded
        assert count_items_with_distractors(session, where=ItemFilter(split="excluded")) == excluded


def test_long_contexts_are_excluded(cli, engine, tmp_path):
    cli("demo")
    result = cli("split", "--max-context-tokens", "70")
    with Session(engine) as session:
        rows = session.execute(select(Item.split, Item.context_id)).all()
    excluded = [r for r in rows if r.split == "excluded"]
    assert excluded and f"excluded {len(excluded)}" in result.output


def test_split_with_a_real_tokenizer(cli, engine, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    cli("demo")
    # one token per word: every demo context has between 30 and 50 words
    assert "excluded 0" in cli("split", "--tokenizer", tmp_path, "--max-context-tokens", "60").output
    assert "excluded 12" in cli("split", "--tokenizer", tmp_path, "--max-context-tokens", "25").output


def test_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_rater_cli_does_not_load_torch():
    code = "import sys, rater.cli, rater.raters.runner, rater.data.exports; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_types_are_checked_with_zero_errors():
    """mypy over rater/ and training/ (settings in pyproject.toml: the pydantic plugin, no blanket ignores)."""
    mypy = Path(sys.executable).parent / "mypy"
    result = subprocess.run([str(mypy)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "Success: no issues found" in result.stdout, result.stdout + result.stderr


def test_no_unused_imports_or_undefined_names():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "rater", "training", "tests", "benchmarks", "migrations"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_split_of_one_dataset_moves_shared_contexts_whole(cli, engine, tmp_path):
    import json
    rows = []
    for n in range(30):  # dataset "a": one question per context; dataset "b" asks about the same contexts
        rows.append({"context": f"Text nummer {n}.", "question": f"A {n}?", "answer": f"a {n}", "distractors": ["x"]})
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r | {"question": f"B {n}?"}) + "\n" for n, r in enumerate(rows)))
    cli("import", tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    cli("split", "--dataset", "b", "--seed", "4")  # b first: a's items of those contexts go along
    result = cli("split", "--dataset", "a", "--seed", "7")
    assert all(len(splits) == 1 for splits in splits_by_context(engine).values()), "a context in two splits"
    assert "30 items of other datasets share these contexts" in " ".join(result.output.split())
