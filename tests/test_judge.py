"""The LLM judge against a real loopback chat-completions server, through the official openai client."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.judge.scoring import Acceptance, ParseFailure, parse_scores
from rater.store.tables import Distractor, Item, JudgeRequest, Rater, Rating
from tests.fake_openai import FakeOpenAI

KEY = "test-key"


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def items(cli, tmp_path):
    """Two items: distractors marked bra (good) and dålig (bad) so the default server scores them 4 and 1."""
    path = tmp_path / "items.jsonl"
    rows = [{"context": f"Text {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}",
             "distractors": [f"bra {n}", f"dålig {n}", f"mitten {n}"]} for n in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("import", path)


def judge(cli, server, *extra, ok=True):
    os.environ["JUDGE_KEY"] = KEY
    return cli("judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "JUDGE_KEY",
               "--retry-base", "0.01", "--timeout", "2", *extra, ok=ok)


def judged(engine) -> dict[str, tuple[bool, float, float]]:
    with Session(engine) as session:
        rows = session.execute(select(Distractor.text, Rating.accepted, Rating.score, Rating.limit)
                               .join(Rating, Rating.distractor_id == Distractor.id)).all()
    return {t: (a, s, lim) for t, a, s, lim in rows}


def request_rows(engine) -> list[JudgeRequest]:
    with Session(engine) as session:
        return list(session.execute(select(JudgeRequest).order_by(JudgeRequest.id)).scalars())


def test_parse_scores_rules():
    assert parse_scores("thinking $[1,2]$ then $[4, 2.5, 1]$", 3) == [4.0, 2.5, 1.0]
    assert parse_scores('{"reasoning": "r", "scores": [5, 1]}', 2) == [5.0, 1.0]
    for text, problem in (("$[1,2]$", "2 scores for 3"), ("$[0,2,6]$", "outside 1-5"), ("no list", "no $[...]$"),
                          ("$[1.25,2,3]$", "steps of 0.5")):
        with pytest.raises(ParseFailure, match=re.escape(problem)):
            parse_scores(text, 3)


def test_weighted_limit_follows_the_spec():
    rule = Acceptance()
    assert rule.limit([4, 1, 3]) == pytest.approx(2.5 + (8 / 3 - 2.5) * 0.5)
    assert rule.limit([5, 5, 5]) == 3.75 and rule.limit([1, 1, 1]) == 1.75
    assert Acceptance(rule="threshold", threshold=3.5).limit([1, 5]) == 3.5


def test_good_answers_store_scores_limits_and_requests(cli, engine, server, items):
    result = judge(cli, server)
    assert "rated 2 items" in result.output and "parse failures 0" in result.output
    rows = judged(engine)
    limit = 2.5 + ((4 + 1 + 3) / 3 - 2.5) * 0.5
    assert rows["bra 0"] == (True, 4.0, pytest.approx(limit)) and rows["dålig 1"][:2] == (False, 1.0)
    assert rows["mitten 0"][0] is (3.0 > limit)
    requests = request_rows(engine)
    assert [r.status for r in requests] == ["ok", "ok"] and all(r.prompt_tokens > 0 and r.latency_ms >= 0 for r in requests)
    assert all(r.response.endswith("]$") and r.rationale.startswith("Distractor by") for r in requests)
    with Session(engine) as session:
        rationale = session.execute(select(Rating.rationale)).scalars().first()
        settings = session.execute(select(Rater.settings).where(Rater.kind == "llm")).scalar_one()
    assert rationale.startswith("Distractor by distractor") and "$[" not in rationale
    assert KEY not in settings and "judge-model" in settings


def test_rerunning_a_finished_run_sends_nothing(cli, engine, server, items):
    judge(cli, server)
    sent = server.requests
    result = judge(cli, server)
    assert server.requests == sent and "rated 0 items" in result.output


@pytest.mark.parametrize("bad", ["$[4, 1]$", "$[4, 9, 1]$", "I cannot decide."])
def test_bad_answers_are_reasked_then_recorded(cli, engine, server, items, bad):
    server.then(("reply", bad))
    judge(cli, server, "--limit", "1")
    statuses = [r.status for r in request_rows(engine)]
    assert statuses == ["parse_error", "ok"]
    assert len(judged(engine)) == 3


def test_persistent_parse_failure_is_not_a_rejection_and_is_retried_later(cli, engine, server, items):
    server.then(*[("reply", "no list at all")] * 3)
    result = judge(cli, server, "--limit", "1")
    assert "failed 1" in result.output and "parse failures 3" in result.output
    assert judged(engine) == {}
    judge(cli, server, "--limit", "1")
    assert len(judged(engine)) == 3


def test_429_honours_retry_after(cli, engine, server, items):
    server.then(("status", 429, {"Retry-After": "1"}))
    started = time.monotonic()
    result = judge(cli, server, "--limit", "1", "--concurrency", "1")
    assert time.monotonic() - started >= 1.0
    assert "retries 1" in result.output and len(judged(engine)) == 3


def test_500_then_success(cli, engine, server, items):
    server.then(("status", 500, {}), ("status", 503, {}))
    result = judge(cli, server, "--limit", "1")
    assert "retries 2" in result.output and len(judged(engine)) == 3


def test_stalled_response_times_out_and_is_retried(cli, engine, server, items):
    server.then(("stall", 3.0))
    result = judge(cli, server, "--limit", "1", "--timeout", "0.5")
    assert "retries 1" in result.output and len(judged(engine)) == 3


def test_dropped_connection_is_retried(cli, engine, server, items):
    server.then(("drop",))
    result = judge(cli, server, "--limit", "1")
    assert "retries 1" in result.output and len(judged(engine)) == 3


def test_exhausted_attempts_mark_the_item_failed_and_the_run_goes_on(cli, engine, server, items):
    server.then(*[("status", 500, {})] * 2)
    result = judge(cli, server, "--max-attempts", "2", "--concurrency", "1")
    assert "rated 1 items" in result.output and "failed 1" in result.output
    assert [r.status for r in request_rows(engine)].count("failed") == 1


def test_orders_average_scores_over_shuffles(cli, engine, server, items):
    judge(cli, server, "--orders", "3", "--limit", "1")
    assert server.requests == 3 and len(server.per_prompt) == 3
    assert judged(engine)["bra 0"][1] == 4.0


def test_llm_rater_is_listed_and_needs_an_endpoint(cli, items):
    assert "llm" in cli("raters").output.split()
    result = cli("judge", "--rater", "llm", ok=False)
    assert result.exit_code == 2 and "--model" in result.stderr


def test_missing_key_names_the_variable(cli, server, items, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    result = cli("judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "NO_SUCH_KEY", ok=False)
    assert result.exit_code == 2 and "NO_SUCH_KEY" in result.stderr and "--api-key-env" in result.stderr
    assert server.requests == 0


def test_unknown_model_and_wrong_key_stop_the_run_with_exit_2(cli, server, items, monkeypatch):
    result = cli("judge", "--model", "gpt-9", "--base-url", server.url, "--api-key-env", "JUDGE_KEY", ok=False)
    assert result.exit_code == 2 and "gpt-9" in result.stderr and "--model" in result.stderr
    monkeypatch.setenv("WRONG_KEY", "sk-secret-wrong-key")
    result = cli("judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "WRONG_KEY", ok=False)
    assert result.exit_code == 2 and "rejected the API key" in result.stderr
    assert "sk-secret-wrong-key" not in result.stderr + result.output


def test_unreachable_server_is_a_clear_error(cli, items):
    os.environ["JUDGE_KEY"] = KEY
    with socket_closed_port() as port:
        result = cli("judge", "--model", "m", "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key-env", "JUDGE_KEY",
                     "--max-attempts", "2", "--retry-base", "0.01", ok=False)
    assert result.exit_code == 2 and "Cannot reach" in result.stderr and "--base-url" in result.stderr


def test_key_never_lands_in_database_or_exports(cli, engine, server, items, db_path, tmp_path):
    judge(cli, server)
    assert server.auth_headers and all(h == f"Bearer {KEY}" for h in server.auth_headers)
    cli("export", "kto", "-o", tmp_path / "kto.jsonl")
    cli("export", "pref", "-o", tmp_path / "pref.json")
    for path in (db_path, tmp_path / "kto.jsonl", tmp_path / "pref.json"):
        assert KEY.encode() not in path.read_bytes()


def test_named_judge_from_config_file(cli, engine, server, items, tmp_path, monkeypatch):
    monkeypatch.setenv("RATER_HOME", str(tmp_path))
    monkeypatch.setenv("MY_KEY", KEY)
    (tmp_path / "judges.yaml").write_text(
        f"judges:\n  local:\n    model: judge-model\n    base_url: {server.url}\n    api_key_env: MY_KEY\n"
        "    price_in: 10\n    price_out: 30\n    acceptance: {rule: threshold, threshold: 3.5}\n")
    result = cli("judge", "--judge", "local")
    rows = judged(engine)
    assert rows["bra 0"][0] and not rows["mitten 0"][0] and rows["mitten 0"][2] == 3.5
    assert "estimated cost $0.0" in result.output
    with Session(engine) as session:
        assert session.execute(select(Rater.name).where(Rater.kind == "llm")).scalar_one() == "local"


def test_kill_9_then_rerun_loses_nothing_and_repeats_no_request(cli, engine, db_path, tmp_path):
    fake = FakeOpenAI(delay=0.05).start()
    try:
        path = tmp_path / "many.jsonl"
        path.write_text("".join(json.dumps({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}",
                                            "distractors": [f"bra {n}", f"dålig {n}"]}) + "\n" for n in range(200)))
        cli("import", path)
        command = [sys.executable, "-m", "rater.cli", "--db", str(db_path), "judge", "--model", "judge-model",
                   "--base-url", fake.url, "--api-key-env", "JUDGE_KEY", "--concurrency", "4"]
        env = dict(os.environ, JUDGE_KEY=KEY)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while fake.requests < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        with Session(engine) as session:
            rated_before = session.execute(select(func.count(func.distinct(Rating.item_id)))).scalar_one()
            finished = set(session.execute(select(Item.question).join(JudgeRequest, JudgeRequest.item_id == Item.id)
                                           .where(JudgeRequest.status == "ok")).scalars())
        assert 0 < rated_before < 200 and len(finished) >= rated_before
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        with Session(engine) as session:
            assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 400
        # no finished request is sent again; only requests cut off in flight by the kill (at most 4) are
        resent = {q for q, n in fake.per_question.items() if n > 1}
        assert not resent & finished
        assert len(resent) <= 4 and set(fake.per_question) == {f"F {n}?" for n in range(200)}
        assert sum(fake.per_question.values()) == 200 + len(resent)
    finally:
        fake.stop()


class socket_closed_port:
    """A local port with nothing listening."""

    def __enter__(self) -> int:
        import socket
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        return self.port

    def __exit__(self, *exc) -> None:
        pass


def test_a_saved_calibrated_rule_is_used_by_later_runs(cli, engine, server, items, tmp_path, monkeypatch):
    monkeypatch.setenv("RATER_HOME", str(tmp_path))
    (tmp_path / "judges.yaml").write_text("judges:\n  gpt:\n    model: judge-model\n"
                                          "    acceptance: {rule: threshold, threshold: 3.5}\n")
    judge(cli, server, "--as", "gpt")
    rows = judged(engine)
    assert {limit for _, _, limit in rows.values()} == {3.5} and not rows["mitten 0"][0]


def test_structured_output_is_requested_and_parsed(cli, engine, server, items):
    server.default = lambda prompt: json.dumps({"reasoning": "First the grammar, then the meaning.",
                                                "scores": [5, 1, 2]})
    judge(cli, server, "--structured", "--limit", "1")
    schema = server.bodies[0]["response_format"]["json_schema"]["schema"]
    assert server.bodies[0]["response_format"]["type"] == "json_schema"
    assert list(schema["properties"]) == ["reasoning", "scores"]  # the reasoning comes first
    rows = judged(engine)
    assert rows["bra 0"][1] == 5.0 and rows["dålig 0"][1] == 1.0
    with Session(engine) as session:
        assert session.execute(select(Rating.rationale)).scalars().first() == "First the grammar, then the meaning."


def test_rpm_limit_spaces_requests(cli, engine, server, items):
    started = time.monotonic()
    judge(cli, server, "--rpm", "60", "--concurrency", "4")  # 2 items: the second waits a second
    assert time.monotonic() - started >= 1.0 and len(judged(engine)) == 6
