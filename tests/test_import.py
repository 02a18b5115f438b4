"""Importing SweQUAD-MC, the published samples and the annotation export: counts, idempotence, atomicity."""

import json

from sqlalchemy import func, select
from sqlmodel import Session

from rater.store.tables import Context, Distractor, EvalSet, EvalSlot, Item, RaterRecord, Rating
from tests.conftest import shared_file


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_swequad_import_counts_and_options(cli, engine, swequad_files):
    result = cli("import", *swequad_files)
    assert "Read 1190 records" in result.output
    assert count(engine, Item) == 1190
    with Session(engine) as session:
        item = session.execute(select(Item).where(Item.record == "test:0")).scalar_one()
        texts = set(session.execute(select(Distractor.text).where(Distractor.item_id == item.id)).scalars())
        assert item.split == "test" and item.answer == "när du lämnar in din ansökan"
        # extra.comment replaces the span text when present
        assert "den 29 oktober mellan klockan 06.30 och 07.30" in texts
        assert "29 oktober mellan\xa0klockan 06.30 och 07.30" not in texts
        splits = dict(session.execute(select(Item.split, func.count()).group_by(Item.split)).all())
    assert splits == {"train": 962, "dev": 126, "test": 102}


def test_swequad_duplicate_options_and_two_answers(cli, engine, swequad_files):
    cli("import", *swequad_files)
    raw = []
    for path in swequad_files:
        raw += json.loads(path.read_text())["data"]
    with Session(engine) as session:
        for record in raw:
            answers = [c for c in record["choices"] if c["type"] == "Correct answer"]
            if len({(c.get("extra") or {}).get("comment") or c["text"] for c in answers}) < 2:
                continue
            item = session.execute(select(Item).where(Item.question == record["question"].strip())).scalars().first()
            distractors = list(session.execute(select(Distractor.text).where(Distractor.item_id == item.id)).scalars())
            last = answers[-1]
            assert item.answer == (((last.get("extra") or {}).get("comment") or "").strip() or last["text"].strip())
            # the other correct answer never becomes a distractor, and no text appears twice
            assert not {a["text"].strip() for a in answers} & set(distractors)
            assert len(distractors) == len(set(distractors))


def test_reimport_adds_nothing(cli, engine, swequad_files):
    cli("import", *swequad_files)
    before = [count(engine, m) for m in (Context, Item, Distractor)]
    result = cli("import", *swequad_files)
    assert "nothing new" in result.output
    assert [count(engine, m) for m in (Context, Item, Distractor)] == before


def test_broken_record_imports_nothing_and_says_where(cli, engine, tmp_path):
    good = {"context": "Text.", "question": "Fråga?", "answer": "svar", "distractors": ["a", "b"]}
    rows = [good, dict(good, question="Andra?"), {k: v for k, v in good.items() if k != "answer"} | {"question": "Tredje?"}]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(rows))
    result = cli("import", path, ok=False)
    assert result.exit_code == 2
    assert "record 2" in result.stderr and "'answer'" in result.stderr and "broken.json" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert count(engine, Item) == 0


def test_one_broken_file_of_several_imports_nothing(cli, engine, tmp_path, swequad_files):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [{"context": "c", "question": "q", "choices": [{"type": "Oops", "text": "x"}]}]}')
    result = cli("import", swequad_files[2], path, ok=False)
    assert result.exit_code == 2 and "choice 0" in result.stderr and "'type'" in result.stderr
    assert count(engine, Item) == 0


def test_pref_sample_import_stores_both_with_ratings(cli, engine):
    cli("import", shared_file("published-thesis-samples/pref_sample.json"))
    with Session(engine) as session:
        rater = session.execute(select(RaterRecord)).scalar_one()
        assert (rater.name, rater.kind) == ("pref_sample", "llm")
        accepted = dict(session.execute(select(Rating.accepted, func.count()).group_by(Rating.accepted)).all())
    assert accepted == {True: 40, False: 40}


def test_evaluation_import_keeps_order_and_maps_sources(cli, engine):
    path = shared_file("published-thesis-samples/evaluation_sample.json")
    raw = json.loads(path.read_text())
    cli("import", path)
    cli("import", path)  # idempotent for evaluation sets too
    with Session(engine) as session:
        eval_set = session.execute(select(EvalSet)).scalar_one()
        rows = session.execute(select(EvalSlot.position, Distractor.text, Distractor.source)
                               .join(Distractor, Distractor.id == EvalSlot.distractor_id)
                               .where(EvalSlot.eval_set_id == eval_set.id)
                               .order_by(EvalSlot.position, EvalSlot.slot)).all()
    mapping = {"dataset": "human", "./data/predict_sft.jsonl": "sft", "./data/predict_dpo.jsonl": "dpo"}
    expected = [(p, d.strip(), mapping[s]) for p, r in enumerate(raw) for d, s in zip(r["distractors"], r["sources"])]
    assert [tuple(r) for r in rows] == expected


def test_annotation_export_groups_and_skips_yes_no(cli, engine, tmp_path):
    def entry(content, name, order):
        return {"content": content, "marker": {"name": name, "order": order}, "group_order": 0}
    record = {"context": "Anna bor i Lund och arbetar som lärare.", "annotations": [
        [entry("lärare", "Correct answer", 1), entry("Vad arbetar Anna som?", "Question", 0),
         entry("läkare", "Distractor", 2), entry("snickare", "Distractor", 3), entry("läkare", "Distractor", 4)],
        [entry("Bor Anna i Lund?", "Question", 0), entry("Ja", "Correct answer", 1), entry("Nej", "Distractor", 2)],
    ]}
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"context": "Bo bor i Malmö."}) + "\n")
    result = cli("import", path)
    assert "annotations" in result.output
    with Session(engine) as session:
        items = session.execute(select(Item)).scalars().all()
        texts = session.execute(select(Distractor.text).where(Distractor.item_id == items[0].id)
                                .order_by(Distractor.position)).scalars().all()
    assert [i.question for i in items] == ["Vad arbetar Anna som?", "Vad arbetar Anna som?"]
    assert texts == ["läkare", "snickare"]


def test_unrecognised_format_lists_formats(cli, tmp_path):
    path = tmp_path / "odd.json"
    path.write_text('{"rows": []}')
    result = cli("import", path, ok=False)
    assert result.exit_code == 2
    for name in ("swequad", "annotations", "alpaca-sft", "alpaca-pref", "evaluation"):
        assert name in result.stderr


def test_a_jsonl_file_with_one_record_imports(cli, engine, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"context": "Text.", "question": "Fråga?", "answer": "svar", "distractors": ["fel"]}) + "\n")
    result = cli("import", "--format", "items", path)
    assert "Read 1 record; added 1 context, 1 distractor, 1 item." in result.output and count(engine, Item) == 1


def test_a_broken_line_of_a_jsonl_file_is_named(cli, engine, tmp_path):
    path = tmp_path / "two.jsonl"
    path.write_text('{"context": "T.", "question": "F?", "answer": "s", "distractors": ["a"]}\n{"context": \n')
    result = cli("import", path, ok=False)
    assert result.exit_code == 2 and "line 2" in result.stderr and count(engine, Item) == 0


def test_published_sft_rows_import_with_their_distractors(cli, engine, tmp_path):
    from rater.core.prompts import render_instruction, render_output
    rows = [{"instruction": render_instruction("Anna bor i Lund.", "Var bor Anna?", "i Lund"), "input": "",
             "output": render_output(["i Malmö", "i Umeå"])},
            {"instruction": render_instruction("Bo är lärare.", "Vad är Bo?", "lärare"), "input": "",
             "output": render_output(["läkare"])}]
    path = tmp_path / "sft.json"
    path.write_text(json.dumps(rows, ensure_ascii=False))
    result = cli("import", path)
    assert "alpaca-sft" in result.output
    with Session(engine) as session:
        found = session.execute(select(Item.question, Distractor.text, Distractor.source)
                                .join(Distractor, Distractor.item_id == Item.id).order_by(Distractor.id)).all()
    assert [tuple(r) for r in found] == [("Var bor Anna?", "i Malmö", "human"), ("Var bor Anna?", "i Umeå", "human"),
                                         ("Vad är Bo?", "läkare", "human")]
    out = tmp_path / "again.json"
    cli("export", "sft", "--split", "all", "-o", out)
    assert json.loads(out.read_text()) == rows  # the published form survives a round trip byte for byte
