"""Generators: the offline baseline on SweQUAD-MC, and the openai generator's loop against the loopback server."""

import asyncio
import json

import pytest
from sqlalchemy import select
from sqlmodel import Session

from rater.core.domain import ItemView
from rater.core.prompts import parse_instruction, render_instruction
from rater.generators import GENERATORS
from rater.generators.base import MAX_ATTEMPTS
from rater.generators.baseline import BaselineGenerator
from rater.raters.rules import contains_words, normalised_words
from rater.store.tables import Distractor
from tests.fake_openai import FakeOpenAI


def swequad_views(swequad_files):
    from rater.data.formats import parse_file
    batch = parse_file(swequad_files[2])  # test.json
    return [ItemView(n, i.context, i.question, i.answer, ()) for n, i in enumerate(batch.items)], batch.items


def test_baseline_never_returns_the_answer_or_an_overlapping_span(swequad_files, capsys):
    views, items = swequad_views(swequad_files)
    produced = asyncio.run(BaselineGenerator().generate(views, 4))
    hits = total = 0
    for item, distractors in zip(items, produced):
        answer = normalised_words(item.answer)
        assert len(distractors) == len({normalised_words(d) for d in distractors})
        for text in distractors:
            words = normalised_words(text)
            assert words != answer and not contains_words(words, answer) and not contains_words(answer, words)
            assert text in " ".join(item.context.split()) or all(w in normalised_words(item.context) for w in words)
        human = {normalised_words(d.text) for d in item.distractors}
        hits += sum(normalised_words(d) in human for d in distractors)
        total += len(distractors)
    assert total >= 3 * len(items)  # it finds candidates for nearly every item
    with capsys.disabled():
        print(f"\nbaseline on SweQUAD-MC test: {total} distractors for {len(items)} items; "
              f"{hits} ({hits / total:.1%}) are among the human distractors")


def test_baseline_is_deterministic(swequad_files):
    views, _ = swequad_views(swequad_files)
    first = asyncio.run(BaselineGenerator().generate(views[:20], 4))
    assert asyncio.run(BaselineGenerator().generate(views[:20], 4)) == first


def test_generators_are_entry_points():
    assert {"baseline", "openai", "hf"} <= set(GENERATORS.installed())
    with pytest.raises(Exception, match="installed generators"):
        GENERATORS.load("nope")


def test_generate_cli_and_rerun_completes_only_short_items(cli, engine):
    cli("demo")
    result = cli("generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--num", "3")
    assert "12 items" in result.output
    with Session(engine) as session:
        count = len(session.execute(select(Distractor.id).where(Distractor.source == "baseline")).all())
    assert 24 <= count <= 36
    again = cli("generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--num", "3")
    import re
    short = int(re.search(r"; (\d+) items? got fewer", " ".join(result.output.split())).group(1))
    assert short and re.search(rf"baseline: {short} items?,", " ".join(again.output.split()))  # only the short ones


@pytest.fixture
def server():
    fake = FakeOpenAI(models=("gen-model",)).start()
    yield fake
    fake.stop()


ITEM = ItemView(1, "Anna bor i Lund.", "Var bor Anna?", "i Lund", ())


@pytest.fixture(autouse=True)
def generator_key(monkeypatch):
    monkeypatch.setenv("GEN_KEY", "test-key")


def generate(server, items, num: int, **options) -> list[list[str]]:
    """Run the openai generator against the loopback server, closing its client before the loop ends."""
    generator = GENERATORS.load("openai").from_options(model="gen-model", base_url=server.url, api_key_env="GEN_KEY",
                                                      retry_base=0.01, **options)

    async def run():
        try:
            return await generator.generate(items, num)
        finally:
            await generator.close()
    return asyncio.run(run())


def test_openai_loop_drops_duplicates_answer_empty_and_malformed(server):
    server.then(("reply", "<false> i Malmö </false>\n<false> i Lund </false>\n<false>  </false>\n<false> i malmö! </false>"),
                ("reply", "<false> i Umeå </false>\n<false unclosed i Kiruna\n"),
                ("reply", "no tags at all"),
                ("reply", "<false> i Göteborg </false>\n<false> i Visby </false>"))
    found = generate(server, [ITEM], 4)
    assert found == [["i Malmö", "i Umeå", "i Göteborg", "i Visby"]]
    assert server.requests == 4
    # re-prompts carry the published instruction plus what was found so far, as <false> tags
    assert server.prompts[0] == render_instruction(ITEM.context, ITEM.question, ITEM.answer)
    assert parse_instruction(server.prompts[1].split("<false>")[0]) is not None
    assert "<false> i Malmö </false>\n" in server.prompts[1] and "<false> i Umeå </false>\n" in server.prompts[2]


def test_openai_loop_stops_after_eight_attempts(server):
    server.then(*[("reply", "<false> i Lund </false>")] * 20)
    found = generate(server, [ITEM], 4)
    assert found == [[]] and server.requests == MAX_ATTEMPTS


def test_openai_completions_api_and_cli(cli, engine, server):
    cli("demo")
    server.default = lambda prompt: "<false> ett påhittat svar </false>\n<false> ett annat svar </false>\n"
    cli("generate", "--generator", "openai", "--model", "gen-model", "--base-url", server.url, "--api-key-env",
        "GEN_KEY", "--api", "completions", "--source", "api", "--split", "all", "--limit", "3", "--num", "2")
    with Session(engine) as session:
        rows = session.execute(select(Distractor.item_id, Distractor.text).where(Distractor.source == "api")).all()
    assert sorted(rows) == sorted((i, t) for i in (1, 2, 3) for t in ("ett påhittat svar", "ett annat svar"))
    assert all(p.startswith("<context> ") for p in server.prompts)


def test_openai_generator_needs_a_model():
    with pytest.raises(Exception, match="needs --model"):
        GENERATORS.load("openai").from_options()


def test_a_text_the_item_already_has_is_never_added_again(cli, engine):
    from rater.generators.runner import add_distractors
    cli("demo")
    with Session(engine) as session:
        first = session.execute(select(Distractor.text).where(Distractor.item_id == 1)).scalars().first()
        added, dropped = add_distractors(session, item_id=1, source="model",
                                         texts=[f"  {first.upper()} ", "något helt nytt", "Något helt nytt"], num=4)
        session.commit()
    assert (added, dropped) == (1, 2)


def test_baseline_then_rules_gives_pairs_and_kto_rows_that_teach_something(cli, engine, swequad_files, tmp_path):
    cli("import", swequad_files[2])
    result = cli("generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--limit", "200")
    cli("judge", "--rater", "rules")
    pref = cli("export", "pref", "--split", "test", "--pairs", "all", "--format", "trl", "-o", tmp_path / "pref.jsonl",
               ok=False)
    cli("export", "kto", "--split", "test", "-o", tmp_path / "kto.jsonl")
    kto = [json.loads(line) for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    # with no repeats, rules rejects nothing: no pairs, and the export says why instead of writing an empty file
    assert pref.exit_code == 2 and not (tmp_path / "pref.jsonl").exists()
    assert "no item has both an accepted and a rejected one" in " ".join(pref.stderr.replace("│", " ").split())
    labels: dict = {}
    for row in kto:
        labels.setdefault((row["prompt"], row["completion"]), set()).add(row["label"])
    assert kto and all(len(found) == 1 for found in labels.values())
    assert "0 repeats of distractors" in " ".join(result.output.split())
    with Session(engine) as session:  # no item holds one text twice, whatever the sources
        rows = session.execute(select(Distractor.item_id, Distractor.text)).all()
    assert len({(i, t.strip().casefold()) for i, t in rows}) == len(rows)


def run_generate(cli, server, *extra, ok=True):
    return cli("generate", "--generator", "openai", "--model", "gen-model", "--base-url", server.url,
               "--api-key-env", "GEN_KEY", "--source", "api", "--split", "all", "--num", "2", "--retry-base", "0.01",
               "--max-attempts", "2", *extra, ok=ok)


def test_failed_requests_are_counted_and_said(cli, engine, server):
    cli("demo")
    server.default = lambda prompt: "<false> ett påhittat svar </false>\n<false> ett annat svar </false>\n"
    server.then(("status", 503, {}), ("status", 503, {}))  # the first request fails on both attempts
    result = run_generate(cli, server, "--limit", "3", "--concurrency", "1", ok=False)
    flat = " ".join(result.output.split())
    assert "1 request failed" in flat and "6 distractors added" in flat
    assert result.exit_code == 3


def test_a_refused_generator_request_stops_with_the_servers_reason(cli, engine, server):
    cli("demo")
    server.then(("status", 400, {}, {"detail": "Server is pinned to 'tiny'; requested 'gen-model'."}))
    result = run_generate(cli, server, "--concurrency", "1", ok=False)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.exit_code == 2 and "Server is pinned to 'tiny'" in flat and "judge" not in flat


def test_a_generator_whose_every_request_fails_exits_non_zero(cli, engine, server):
    cli("demo")
    server.then(*[("status", 500, {}, {"error": {"message": "CUDA out of memory"}})] * 50)
    result = run_generate(cli, server, "--concurrency", "1", ok=False)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.exit_code == 2 and "CUDA out of memory" in flat and "first 3 requests" in flat


def test_an_unreachable_generator_server_is_named_without_the_judge(cli, engine):
    cli("demo")
    result = cli("generate", "--generator", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                 "--api-key-env", "GEN_KEY", "--source", "api", "--max-attempts", "1", ok=False)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.exit_code == 2 and "Cannot reach the server at http://127.0.0.1:9/v1" in flat


def test_generate_on_a_split_without_items_names_the_splits_there_are(cli):
    cli("demo")  # 12 test items
    result = cli("generate", "--generator", "baseline", "--source", "b", "--split", "train", ok=False)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.exit_code == 2 and "No items in split 'train'; the items here are in: test 12" in flat
