"""Exports: published SFT instructions byte for byte, preference round trip, TRL and LLaMA-Factory forms, KTO."""

import json
from collections import Counter

from rater.core.prompts import parse_false_tags, parse_instruction
from tests.conftest import shared_file


def test_sft_instructions_match_published_rows_byte_for_byte(cli, tmp_path, swequad_files):
    cli("import", *swequad_files)
    out = tmp_path / "sft.json"
    cli("export", "sft", "--split", "all", "-o", out)
    exported = {row["instruction"] for row in json.loads(out.read_text())}
    published = json.loads(shared_file("published-thesis-samples/pref_sample.json").read_text())
    questions = {json.loads(line)["question"].strip() for path in swequad_files
                 for line in [json.dumps(r) for r in json.loads(path.read_text())["data"]]}
    from_swequad = {row["instruction"] for row in published if parse_instruction(row["instruction"])[1] in questions}
    assert len(from_swequad) >= 20
    assert from_swequad <= exported


def test_sft_row_shape(cli, tmp_path):
    cli("demo")
    out = tmp_path / "sft.json"
    cli("export", "sft", "--split", "test", "-o", out)
    row = json.loads(out.read_text())[0]
    assert row["input"] == ""
    assert row["instruction"].startswith("<context> Ekorren") and row["instruction"].endswith(" </true>\n")
    assert row["output"] == ("<false> sover hela dagen </false>\n<false> flyttar söderut </false>\n"
                             "<false> bygger bo av lera </false>\n<false> Samlar nötter och kottar </false>\n")


def pairs_by_instruction(rows, chosen_of, rejected_of):
    found: dict[str, Counter] = {}
    for row in rows:
        found.setdefault(row["instruction"], Counter())[(chosen_of(row), rejected_of(row))] += 1
    return found


def test_pref_sample_round_trip(cli, tmp_path):
    source = shared_file("published-thesis-samples/pref_sample.json")
    cli("import", source)
    out = tmp_path / "pref.json"
    cli("export", "pref", "--split", "all", "--format", "alpaca", "-o", out)
    original = json.loads(source.read_text())
    exported = json.loads(out.read_text())
    assert len(exported) == len(original)
    assert all(row["input"] == "" and len(row["output"]) == 2 for row in exported)
    first, second = (lambda r: r["output"][0]), (lambda r: r["output"][1])
    assert pairs_by_instruction(exported, first, second) == pairs_by_instruction(original, first, second)


def test_pref_trl_and_llamafactory_forms(cli, tmp_path):
    cli("import", shared_file("published-thesis-samples/pref_sample.json"))
    trl = tmp_path / "pref.jsonl"
    cli("export", "pref", "--split", "all", "--format", "trl", "-o", trl)
    rows = [json.loads(line) for line in trl.read_text().splitlines()]
    assert set(rows[0]) == {"prompt", "chosen", "rejected"} and len(rows) == 40
    assert parse_false_tags(rows[0]["chosen"]) and rows[0]["chosen"].endswith(" </false>\n")
    lf = tmp_path / "pref_lf.json"
    cli("export", "pref", "--split", "all", "--format", "llamafactory", "-o", lf)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["pref_lf"]["ranking"] is True and info["pref_lf"]["file_name"] == "pref_lf.json"
    assert isinstance(json.loads(lf.read_text())[0]["chosen"], str)


def test_pair_strategies(cli, tmp_path, engine):
    cli("demo")
    cli("judge", "--rater", "rules")
    counts = {}
    for strategy in ("disjoint", "all", "one"):
        out = tmp_path / f"{strategy}.jsonl"
        cli("export", "pref", "--split", "test", "--pairs", strategy, "--format", "trl", "-o", out)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        counts[strategy] = len(rows)
        if strategy == "disjoint":
            used = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
            assert len(used) == len(set(used))
    # four demo items have one rule-rejected distractor among four: 1 pair each, or 3 with --pairs all
    assert counts == {"disjoint": 4, "all": 12, "one": 4}


def test_kto_rows_have_boolean_labels(cli, tmp_path):
    cli("demo")
    cli("judge", "--rater", "rules")
    out = tmp_path / "kto.jsonl"
    cli("export", "kto", "--split", "test", "-o", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 48
    assert Counter(r["label"] for r in rows) == {True: 44, False: 4}
    lf = tmp_path / "kto_lf.json"
    cli("export", "kto", "--split", "test", "--format", "llamafactory", "-o", lf)
    assert all(isinstance(r["kto_tag"], bool) for r in json.loads(lf.read_text()))
    assert json.loads((tmp_path / "dataset_info.json").read_text())["kto_lf"]["columns"]["kto_tag"] == "kto_tag"


def test_unknown_rater_in_export_is_a_clear_error(cli, tmp_path):
    cli("demo")
    result = cli("export", "pref", "--rater", "nobody", "-o", tmp_path / "x.json", ok=False)
    assert result.exit_code == 2 and "nobody" in result.stderr


def test_pairs_with_one_text_and_rows_labelled_both_ways_are_left_out_and_counted(cli, tmp_path, engine):
    from sqlalchemy import select
    from sqlmodel import Session

    from rater.core.domain import Judgement
    from rater.store.ratings import get_or_create_rater, save_judgements
    from rater.store.tables import Distractor
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))  # "rostfritt stål" from dpo and sft
    with Session(engine) as session:
        rows = session.execute(select(Distractor.id, Distractor.item_id, Distractor.text, Distractor.source)).all()
        rater = get_or_create_rater(session, name="anna", kind="human")
        for item_id in {r.item_id for r in rows}:
            save_judgements(session, rater_id=rater.id, item_id=item_id, judgements=[
                Judgement(r.id, r.source == "dpo" or r.text == "slip") for r in rows if r.item_id == item_id])
        session.commit()
    pref = cli("export", "pref", "--split", "all", "--pairs", "all", "--format", "trl", "-o", tmp_path / "pref.jsonl")
    pairs = [json.loads(line) for line in (tmp_path / "pref.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
    assert "1 pairs whose chosen and rejected texts are the same" in " ".join(pref.output.split())
    kto = cli("export", "kto", "--split", "all", "-o", tmp_path / "kto.jsonl")
    completions = [json.loads(line)["completion"] for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert "<false> rostfritt stål </false>\n" not in completions
    assert "2 rows whose completion is labelled both ways" in " ".join(kto.output.split())


def test_trl_chat_rows_get_the_chat_template_from_trl_exactly_as_generation_does(cli, tmp_path, tiny_model):
    from trl.data_utils import apply_chat_template, is_conversational

    from training.generate import model_input
    from training.models import load_tokenizer
    cli("demo")
    cli("judge", "--rater", "rules")
    tokenizer = load_tokenizer(tiny_model)
    for kind, extra in (("sft", ["--split", "all"]), ("pref", ["--split", "all", "--pairs", "all"]), ("kto", ["--split", "all"])):
        chat, plain = tmp_path / f"{kind}-chat.jsonl", tmp_path / f"{kind}.jsonl"
        cli("export", kind, "--format", "trl", "--chat", *extra, "-o", chat)
        cli("export", kind, "--format", "trl", *extra, "-o", plain)
        chat_row = json.loads(chat.read_text().splitlines()[0])
        plain_row = json.loads(plain.read_text().splitlines()[0])
        assert is_conversational(chat_row) and not is_conversational(plain_row)
        instruction = chat_row["prompt"][0]["content"]
        assert instruction == plain_row["prompt"] and parse_instruction(instruction)
        # TRL's own formatting of the --chat row is the hf generator's prompt, byte for byte
        formatted = apply_chat_template(chat_row, tokenizer)
        assert formatted["prompt"] == model_input(tokenizer, instruction) and "[INST]" in formatted["prompt"]
        assert "[INST]" not in plain_row["prompt"]  # the plain form trains a different prompt
    result = cli("export", "pref", "--format", "alpaca", "--chat", "-o", tmp_path / "x.json", ok=False)
    assert result.exit_code == 2 and "--chat applies to --format trl" in result.stderr


def test_rater_train_takes_a_chat_export_as_it_is(cli, tmp_path, tiny_model):
    from training.data import as_dataset, sft_from_file
    from training.models import load_tokenizer
    cli("demo")
    out = tmp_path / "sft-chat.jsonl"
    cli("export", "sft", "--format", "trl", "--chat", "--split", "all", "-o", out)
    plain = tmp_path / "sft.jsonl"
    cli("export", "sft", "--format", "trl", "--split", "all", "-o", plain)
    tokenizer = load_tokenizer(tiny_model)
    assert as_dataset(sft_from_file(out), tokenizer).to_list() == as_dataset(sft_from_file(plain), tokenizer).to_list()
