"""Generators: the offline baseline on SweQUAD-MC, and the openai generator's loop against the loopback server."""

import asyncio
import os

import pytest
from sqlalchemy import select
from sqlmodel import Session

from rater.core.domain import ItemView
from rater.core.prompts import parse_instruction, render_instruction
from rater.generators import installed_generators, load_generator
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
    assert {"baseline", "openai", "hf"} <= set(installed_generators())
    with pytest.raises(Exception, match="installed generators"):
        load_generator("nope")


def test_generate_cli_and_rerun_completes_only_short_items(cli, engine):
    cli("demo")
    result = cli("generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--num", "3")
    assert "12 items" in result.output
    with Session(engine) as session:
        count = len(session.execute(select(Distractor.id).where(Distractor.source == "baseline")).all())
    assert 24 <= count <= 36
    again = cli("generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--num", "3")
    short = int(result.output.split("items got fewer")[0].split(";")[-1].strip())
    assert f"{short} items, 0 distractors added" in " ".join(again.output.split())


@pytest.fixture
def server():
    fake = FakeOpenAI(models=("gen-model",)).start()
    yield fake
    fake.stop()


ITEM = ItemView(1, "Anna bor i Lund.", "Var bor Anna?", "i Lund", ())


def openai_generator(server, **options):
    os.environ["GEN_KEY"] = "test-key"
    return load_generator("openai").from_options(model="gen-model", base_url=server.url, api_key_env="GEN_KEY",
                                                 retry_base=0.01, **options)


def test_openai_loop_drops_duplicates_answer_empty_and_malformed(server):
    server.then(("reply", "<false> i Malmö </false>\n<false> i Lund </false>\n<false>  </false>\n<false> i malmö! </false>"),
                ("reply", "<false> i Umeå </false>\n<false unclosed i Kiruna\n"),
                ("reply", "no tags at all"),
                ("reply", "<false> i Göteborg </false>\n<false> i Visby </false>"))
    found = asyncio.run(openai_generator(server).generate([ITEM], 4))
    assert found == [["i Malmö", "i Umeå", "i Göteborg", "i Visby"]]
    assert server.requests == 4
    # re-prompts carry the published instruction plus what was found so far, as <false> tags
    assert server.prompts[0] == render_instruction(ITEM.context, ITEM.question, ITEM.answer)
    assert parse_instruction(server.prompts[1].split("<false>")[0]) is not None
    assert "<false> i Malmö </false>\n" in server.prompts[1] and "<false> i Umeå </false>\n" in server.prompts[2]


def test_openai_loop_stops_after_eight_attempts(server):
    server.then(*[("reply", "<false> i Lund </false>")] * 20)
    found = asyncio.run(openai_generator(server).generate([ITEM], 4))
    assert found == [[]] and server.requests == MAX_ATTEMPTS


def test_openai_completions_api_and_cli(cli, engine, server):
    cli("demo")
    server.default = lambda prompt: "<false> ett påhittat svar </false>\n<false> ett annat svar </false>\n"
    os.environ["GEN_KEY"] = "test-key"
    cli("generate", "--generator", "openai", "--model", "gen-model", "--base-url", server.url, "--api-key-env",
        "GEN_KEY", "--api", "completions", "--source", "api", "--split", "all", "--limit", "3", "--num", "2")
    with Session(engine) as session:
        rows = session.execute(select(Distractor.item_id, Distractor.text).where(Distractor.source == "api")).all()
    assert sorted(rows) == sorted((i, t) for i in (1, 2, 3) for t in ("ett påhittat svar", "ett annat svar"))
    assert all(p.startswith("<context> ") for p in server.prompts)


def test_openai_generator_needs_a_model():
    with pytest.raises(Exception, match="needs --model"):
        load_generator("openai").from_options()
