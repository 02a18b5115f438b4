"""A judge or generator whose server dies mid-run stops soon, saves what it got and resumes on a rerun; a refused
port is said at once; a local server needs no key; the max_completion_tokens switch is not an attempt."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.core.errors import FatalRaterError
from rater.llm.client import ChatClient, Endpoint
from rater.store.tables import Distractor, Item, JudgeRequest, Rating
from tests.fake_openai import FakeOpenAI, start_process

STOP_BOUND_S = 30  # the bound: a run stops within 30 s of its server's death


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "test-key")
    monkeypatch.setenv("GEN_KEY", "test-key")


def import_many(cli, tmp_path, count: int) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}",
                                        "distractors": [f"bra {n}", f"dålig {n}"]}) + "\n" for n in range(count)))
    cli("import", path)


def questions_asked(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as answer:
        return json.loads(answer.read())["per_question"]


def run_until_killed(command: list[str], server: subprocess.Popen, answered) -> tuple[subprocess.CompletedProcess, float]:
    """Start `command`, kill -9 the server once `answered()` is true, and wait for the command to end: (its
    result, seconds from the kill to its end)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 60
    while not answered():
        assert time.monotonic() < deadline and process.poll() is None, "the run made no progress"
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    killed = time.monotonic()
    try:
        out, err = process.communicate(timeout=STOP_BOUND_S + 30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(command, process.returncode, out, err), time.monotonic() - killed


def judge_command(db_path, url: str) -> list[str]:
    return [sys.executable, "-m", "rater.cli", "--db", str(db_path), "judge", "--model", "judge-model", "--base-url",
            url, "--api-key-env", "JUDGE_KEY", "--concurrency", "4"]


def answered_requests(engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(JudgeRequest).where(JudgeRequest.status == "ok")
                               ).scalar_one()


def test_a_judge_whose_server_is_killed_stops_within_the_bound_and_a_rerun_resumes(cli, engine, db_path, tmp_path):
    import_many(cli, tmp_path, 60)
    server, url = start_process(tmp_path / "port1", delay=0.1)
    result, seconds = run_until_killed(judge_command(db_path, url), server, lambda: answered_requests(engine) >= 6)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.returncode == 2, result.stderr
    assert seconds < STOP_BOUND_S, f"the judge ran on for {seconds:.1f} s after its server died"
    assert f"The server at {url} stopped answering" in flat and "rerun" in flat
    with Session(engine) as session:  # every answer that arrived is saved as ratings
        rated = set(session.execute(select(Rating.item_id).distinct()).scalars())
        answered = set(session.execute(select(JudgeRequest.item_id).where(JudgeRequest.status == "ok")).scalars())
    assert 6 <= len(rated) < 60 and rated == answered
    assert f"after {len(rated)} items" in flat
    # a rerun against the server started again asks only for the items without ratings
    again, url2 = start_process(tmp_path / "port2")
    try:
        rerun = subprocess.run(judge_command(db_path, url2), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        asked = questions_asked(url2)
        with Session(engine) as session:
            assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 120
            done_before = set(session.execute(select(Item.question).where(Item.id.in_(rated))).scalars())
        assert not set(asked) & done_before and len(asked) == 60 - len(rated)
    finally:
        again.kill()


def test_a_generator_whose_server_is_killed_stops_within_the_bound_and_keeps_what_it_got(cli, engine, db_path,
                                                                                         tmp_path):
    import_many(cli, tmp_path, 200)
    server, url = start_process(tmp_path / "port1", delay=0.1, mode="generator")
    command = [sys.executable, "-m", "rater.cli", "--db", str(db_path), "generate", "--generator", "openai", "--model",
               "gen-model", "--base-url", url, "--api-key-env", "GEN_KEY", "--source", "api", "--split", "all",
               "--limit", "200", "--num", "2", "--batch-size", "8", "--concurrency", "4"]

    def generated() -> int:
        with Session(engine) as session:
            return session.execute(select(func.count()).select_from(Distractor).where(Distractor.source == "api")
                                   ).scalar_one()

    result, seconds = run_until_killed(command, server, lambda: generated() >= 16)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.returncode == 2, result.stderr + result.stdout
    assert seconds < STOP_BOUND_S, f"the generator ran on for {seconds:.1f} s after its server died"
    assert "stopped answering" in flat and "rerun" in flat and "what they got is saved" in flat
    kept = generated()
    assert 16 <= kept < 400
    again, url2 = start_process(tmp_path / "port2", mode="generator")
    try:
        rerun = subprocess.run([*command[:command.index(url)], url2, *command[command.index(url) + 1:]],
                               capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
        assert generated() == 400, rerun.stdout  # every item completed; none got more than --num
        assert sum(questions_asked(url2).values()) < 200  # items completed before were not asked again
    finally:
        again.kill()


def closed_port() -> int:
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_a_refused_port_is_said_at_once_without_backoff():
    client = ChatClient(Endpoint(model="m", base_url=f"http://127.0.0.1:{closed_port()}/v1", retry_base=5.0), "k")

    async def ask():
        try:
            await client.complete([{"role": "user", "content": "?"}])
        finally:
            await client.close()

    with pytest.raises(FatalRaterError, match="connection was refused"):
        asyncio.run(ask())
    assert client.retries == 0  # no retry, so no backoff (5 attempts would wait 5 + 10 + 20 + 40 s)


def test_a_refused_port_exits_2_from_the_command(cli, tmp_path):
    import_many(cli, tmp_path, 2)
    result = cli("judge", "--model", "m", "--base-url", f"http://127.0.0.1:{closed_port()}/v1", "--api-key-env",
                 "JUDGE_KEY", "--retry-base", "5", ok=False)
    assert result.exit_code == 2 and "connection was refused" in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr


def test_a_local_server_needs_no_key_variable(cli, engine, tmp_path, monkeypatch):
    import_many(cli, tmp_path, 2)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local = FakeOpenAI(api_key="no-key").start()  # like transformers serve or Ollama: any key, or none, is taken
    try:
        cli("judge", "--model", "judge-model", "--base-url", local.url)
        assert local.auth_headers and set(local.auth_headers) == {"Bearer no-key"}
    finally:
        local.stop()
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 4
    # a variable named on purpose must exist: a typo is not silently sent as no key
    result = cli("judge", "--model", "judge-model", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env",
                 "NO_SUCH_KEY", ok=False)
    assert result.exit_code == 2 and "NO_SUCH_KEY" in result.stderr
    # and without --base-url (the OpenAI API) the key is required as before
    assert cli("judge", "--model", "judge-model", ok=False).exit_code == 2


def test_the_switch_to_max_completion_tokens_is_not_an_attempt(cli, engine, tmp_path):
    import_many(cli, tmp_path, 3)
    modern = FakeOpenAI(reject_max_tokens=True).start()
    try:
        cli("judge", "--model", "judge-model", "--base-url", modern.url, "--api-key-env", "JUDGE_KEY",
            "--max-attempts", "1", "--concurrency", "1")
    finally:
        modern.stop()
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 6
