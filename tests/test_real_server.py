"""Against a real OpenAI-compatible server nobody here wrote: `transformers serve` (the `serving` extra of the
installed transformers) on 127.0.0.1, pinned to the tiny offline model. The scripted loopback server
(tests/fake_openai.py) keeps the exact cases; this one checks that our client meets a real server's answers."""

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.store.tables import Distractor, JudgeRequest

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    """`transformers serve TINY --host 127.0.0.1`, pinned to the tiny model; yields (base URL, model name)."""
    port = free_port()
    home = tmp_path_factory.mktemp("hf-home")
    log = home / "serve.log"
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(tiny_model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home), "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("SERVE_KEY", "unused-by-transformers-serve")


def flat(text: str) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def test_the_judge_records_parse_failures_and_finishes(cli, engine, served):
    url, model = served
    cli("demo")
    result = cli("judge", "--model", model, "--base-url", url, "--api-key-env", "SERVE_KEY", "--limit", "3",
                 "--max-tokens", "48", "--concurrency", "1", "--retry-base", "0.01", ok=False)
    # the tiny model writes noise, never a $[...]$ list: each item is asked three times, then left unrated
    assert result.exit_code == 2 and "Every item failed (3)" in flat(result.stderr)
    assert "Traceback" not in result.output + result.stderr and "parse failures 9" in flat(result.output)
    with Session(engine) as session:
        statuses = session.execute(select(JudgeRequest.status, func.count()).group_by(JudgeRequest.status)).all()
        answers = session.execute(select(JudgeRequest.response)).scalars().all()
    assert dict(statuses) == {"parse_error": 9} and all(answers)
    with Session(engine) as session:
        usage = session.execute(select(JudgeRequest.completion_tokens)).scalars().all()
    assert usage and max(usage) <= 48  # the cap reached the server


def test_a_wrong_model_name_exits_2_with_the_servers_reason(cli, served):
    url, model = served
    cli("demo")
    result = cli("judge", "--model", "qwen", "--base-url", url, "--api-key-env", "SERVE_KEY", ok=False)
    message = "".join(flat(result.stderr).split())  # the panel wraps long paths anywhere
    assert result.exit_code == 2 and "refusedtherequest(400)" in message
    assert f"Serverispinnedto'{model}';requested'qwen'" in message


def test_the_openai_generator_finishes_and_says_what_it_added_and_what_failed(cli, engine, served):
    url, model = served
    cli("demo")
    result = cli("generate", "--generator", "openai", "--model", model, "--base-url", url, "--api-key-env",
                 "SERVE_KEY", "--source", "served", "--split", "all", "--limit", "2", "--num", "2",
                 "--max-new-tokens", "48", "--concurrency", "1", "--max-attempts", "2", "--retry-base", "0.01")
    summary = re.search(r"openai: 2 items, (\d+) distractors added under 'served'; .*; (\d+) requests failed",
                        flat(result.output))
    assert summary, result.output
    with Session(engine) as session:
        stored = session.execute(select(func.count()).select_from(Distractor)
                                 .where(Distractor.source == "served")).scalar_one()
    assert int(summary.group(1)) == stored and int(summary.group(2)) == 0
    wrong = cli("generate", "--generator", "openai", "--model", "qwen", "--base-url", url, "--api-key-env",
                "SERVE_KEY", "--source", "served", "--split", "all", "--limit", "2", ok=False)
    assert wrong.exit_code == 2 and "requested'qwen'" in "".join(flat(wrong.stderr).split())
