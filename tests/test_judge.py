"""The LLM judge against a real loopback chat-completions server, through the official openai client."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.judge.scoring import Acceptance, ParseFailure, parse_scores
from rater.store.tables import Distractor, Item, JudgeRequest, RaterRecord, Rating
from tests.fake_openai import DISTRACTOR_LINE, FakeOpenAI

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


@pytest.fixture(autouse=True)
def judge_key(monkeypatch):
    """The key every judge run here reads (each test sets it itself, so each passes when run alone)."""
    monkeypatch.setenv("JUDGE_KEY", KEY)


def judge(cli, server, *extra, ok=True):
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
        settings = session.execute(select(RaterRecord.settings).where(RaterRecord.kind == "llm")).scalar_one()
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
    result = judge(cli, server, "--limit", "1", ok=False)
    assert result.exit_code == 2 and "Every item failed" in result.stderr  # a run where all failed is no success
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


def test_exhausted_attempts_mark_the_item_failed_and_the_run_goes_on_then_exits_3(cli, engine, server, items):
    server.then(*[("status", 500, {})] * 2)
    result = judge(cli, server, "--max-attempts", "2", "--concurrency", "1", ok=False)
    assert "rated 1 item," in result.output and "failed 1" in result.output
    assert result.exit_code == 3 and "rerun to retry them" in result.output  # scripts notice some items failed
    assert [r.status for r in request_rows(engine)].count("failed") == 1
    assert judge(cli, server).exit_code == 0  # the rerun rates the failed item


def by_position(prompt: str) -> str:
    """Scores that depend only on where a distractor stands: 5 for the first, 4 for the second, 3 for the third."""
    texts = DISTRACTOR_LINE.findall(prompt.split("Distractors:", 1)[-1])
    return "$" + json.dumps([5 - n for n in range(len(texts))]) + "$"


def test_orders_average_scores_over_distinct_orders(cli, engine, server, items):
    server.default = by_position
    judge(cli, server, "--orders", "3", "--limit", "1")
    assert server.requests == 3 and len(server.per_prompt) == 3
    positions = {text: [] for text in ("bra 0", "dålig 0", "mitten 0")}
    for prompt in server.prompts:
        for n, (_, text) in enumerate(DISTRACTOR_LINE.findall(prompt.split("Distractors:", 1)[-1])):
            positions[text].append(5 - n)
    for text, scores in positions.items():
        assert judged(engine)[text][1] == pytest.approx(sum(scores) / 3)  # the mean over the three orders
    assert len({tuple(s) for s in positions.values()}) == 3


def test_orders_never_repeat_an_order(cli, engine, server, tmp_path):
    import_many(cli, tmp_path, 100, lambda n: [f"a{n}", f"b{n}", f"c{n}", f"d{n}"])
    judge(cli, server, "--orders", "3")
    assert server.requests == 300 and len(server.per_prompt) == 300  # 100 items x 3 distinct orders
    two = tmp_path / "two.jsonl"
    two.write_text(json.dumps({"context": "T.", "question": "Två?", "answer": "s", "distractors": ["x", "y"]}) + "\n")
    cli("import", two)
    judge(cli, server, "--orders", "3")
    assert server.per_question["Två?"] == 2  # two distractors have only two orders


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
    with socket_closed_port() as port:
        result = cli("judge", "--model", "m", "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key-env", "JUDGE_KEY",
                     "--max-attempts", "2", "--retry-base", "0.01", ok=False)
    assert result.exit_code == 2 and "Cannot reach" in result.stderr and "--base-url" in result.stderr


def test_key_never_lands_in_database_or_exports(cli, engine, server, items, db_path, tmp_path):
    judge(cli, server)
    assert server.auth_headers and all(h == f"Bearer {KEY}" for h in server.auth_headers)
    cli("export", "kto", "--split", "all", "-o", tmp_path / "kto.jsonl")
    cli("export", "pref", "--split", "all", "-o", tmp_path / "pref.json")
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the writes sit in the WAL: scan it as well as the file
    files = [db_path, wal, tmp_path / "kto.jsonl", tmp_path / "pref.json"]
    assert all(KEY.encode() not in path.read_bytes() for path in files)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert KEY.encode() not in db_path.read_bytes()


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
        assert session.execute(select(RaterRecord.name).where(RaterRecord.kind == "llm")).scalar_one() == "local"


def import_many(cli, tmp_path, count: int, distractors=lambda n: [f"bra {n}", f"dålig {n}"]) -> None:
    """`count` items, question "F n?", each with the given distractors."""
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}",
                                        "distractors": distractors(n)}) + "\n" for n in range(count)))
    cli("import", path)


def judge_process(db_path, url: str) -> list[str]:
    """The command of a judge run in its own process (to be killed, or to run beside a lock)."""
    return [sys.executable, "-m", "rater.cli", "--db", str(db_path), "judge", "--model", "judge-model",
            "--base-url", url, "--api-key-env", "JUDGE_KEY", "--concurrency", "4"]


def test_kill_9_then_rerun_loses_nothing_and_repeats_no_request(cli, engine, db_path, tmp_path):
    fake = FakeOpenAI(delay=0.05).start()
    try:
        import_many(cli, tmp_path, 200)
        command = judge_process(db_path, fake.url)
        env = dict(os.environ)
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
        # no stored answer is ever asked for again; only requests cut off in flight by the kill (4 at a time) and
        # answers that arrived in the last milliseconds, still in the writer's queue, are (normally exactly 4;
        # a writer that stopped committing promptly would resend dozens)
        resent = {q for q, n in fake.per_question.items() if n > 1}
        assert not resent & finished
        assert len(resent) <= 3 * 4 and set(fake.per_question) == {f"F {n}?" for n in range(200)}
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


def test_a_429_on_the_last_attempt_does_not_wait(cli, engine, server, items):
    server.then(("status", 429, {"Retry-After": "60"}))
    started = time.monotonic()
    result = judge(cli, server, "--limit", "1", "--max-attempts", "1", "--concurrency", "1", ok=False)
    # nothing follows the last attempt, so its Retry-After of 60 s is not waited for
    assert time.monotonic() - started < 50 or pytest.fail("slept after the last attempt")
    assert "429 rate limited" in result.output


def test_a_429_waits_for_retry_after_between_attempts(cli, engine, server, items):
    server.then(("status", 429, {"Retry-After": "1"}))
    started = time.monotonic()
    judge(cli, server, "--limit", "1", "--concurrency", "1")
    assert time.monotonic() - started >= 1.0


def test_no_quota_stops_the_run_at_once(cli, engine, server, items):
    quota = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                       "type": "insufficient_quota", "code": "insufficient_quota"}}
    server.then(*[("status", 429, {}, quota)] * 5)
    result = judge(cli, server, "--concurrency", "1", ok=False)
    assert result.exit_code == 2 and "no quota left" in result.stderr and "exceeded your current quota" in result.stderr
    assert server.requests == 1 and judged(engine) == {}


def test_two_servers_with_one_model_name_never_share_answers(cli, engine, items):
    first, second = FakeOpenAI().start(), FakeOpenAI().start()
    try:
        cli("judge", "--model", "judge-model", "--base-url", first.url, "--api-key-env", "JUDGE_KEY", "--as", "a")
        cli("judge", "--model", "judge-model", "--base-url", second.url, "--api-key-env", "JUDGE_KEY", "--as", "b")
        assert first.requests == 2 and second.requests == 2  # the second server was asked, not the cache
    finally:
        first.stop()
        second.stop()


def test_the_event_loop_keeps_sending_while_the_database_is_locked(cli, db_path, tmp_path):
    slow = FakeOpenAI(delay=0.05).start()
    try:
        import_many(cli, tmp_path, 200)
        command = judge_process(db_path, slow.url)
        process = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while slow.requests < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        locker = sqlite3.connect(db_path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another program holds the database
        during = slow.requests
        deadline = time.monotonic() + 20  # (less than the busy timeout: the writer's batch then fails nothing)
        while slow.requests - during < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_while_locked = slow.requests - during
        locker.execute("ROLLBACK")
        assert process.wait(timeout=120) == 0, process.stderr.read()
        # at 4 in flight and 50 ms each, 20 requests take 0.25 s; a loop blocked on the lock would send none
        assert sent_while_locked >= 20
        with Session(create_engine_for(db_path)) as session:
            assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 400
    finally:
        slow.stop()


def create_engine_for(db_path):
    from rater.store.engine import create_store_engine, database_url
    return create_store_engine(database_url(str(db_path)))


def test_a_refused_request_stops_with_the_servers_reason(cli, engine, server, items):
    pinned = {"detail": "Server is pinned to 'tiny'; requested 'judge-model'."}
    server.then(("status", 400, {}, pinned))
    result = judge(cli, server, "--concurrency", "1", ok=False)
    assert result.exit_code == 2 and "Server is pinned to 'tiny'" in " ".join(result.stderr.replace("│", " ").split())
    assert server.requests == 1


def test_the_same_failure_on_the_first_requests_stops_the_run(cli, engine, server, tmp_path):
    import_many(cli, tmp_path, 20, lambda n: ["a", "b"])
    unknown = {"error": {"message": "The model judge-model does not exist or cannot be loaded"}}
    server.then(*[("status", 500, {}, unknown)] * 100)
    result = judge(cli, server, "--concurrency", "1", "--max-attempts", "2", ok=False)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert result.exit_code == 2 and "first 3 requests" in flat and "does not exist or cannot be loaded" in flat
    assert server.requests == 6  # 3 items x 2 attempts, then the run stops instead of failing all 20


def test_answers_are_capped_and_a_server_that_wants_max_completion_tokens_gets_it(cli, engine, items):
    modern = FakeOpenAI(reject_max_tokens=True).start()
    try:
        cli("judge", "--model", "judge-model", "--base-url", modern.url, "--api-key-env", "JUDGE_KEY",
            "--max-tokens", "300")
        assert modern.bodies and all(b.get("max_completion_tokens") == 300 and "max_tokens" not in b
                                     for b in modern.bodies)
        assert modern.requests == 2  # both items answered once the parameter was switched
    finally:
        modern.stop()


def test_max_tokens_defaults_to_1024(cli, engine, server, items):
    judge(cli, server, "--limit", "1")
    assert server.bodies[0]["max_tokens"] == 1024


def test_a_reask_carries_only_the_tail_of_the_failed_answer(cli, engine, server, items):
    rambling = "Let me think. " * 2000 + "I cannot decide."
    server.then(("reply", rambling), ("reply", rambling))
    judge(cli, server, "--limit", "1")
    first, second, third = server.bodies[:3]
    assert len(second["messages"]) == 3 and len(third["messages"]) == 3  # re-asks never pile up
    assert second["messages"][0] == first["messages"][0]
    assert len(second["messages"][1]["content"]) <= 601 and second["messages"][1]["content"].endswith("decide.")
    assert len(json.dumps(third)) < len(json.dumps(first)) + 1500


def test_with_context_sends_the_text_and_a_prompt_file_replaces_the_prompt(cli, engine, server, items, tmp_path):
    judge(cli, server, "--limit", "1", "--with-context", "--as", "with-context")
    assert "Text 0." in server.prompts[0]
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Rate these.\nQuestion: {{question}}\nAnswer: {{answer}}\nDistractors:\n{{distractors}}\n")
    judge(cli, server, "--limit", "1", "--prompt", prompt, "--as", "own-prompt")
    assert server.prompts[-1].startswith("Rate these.\nQuestion: Fråga 0?") and "Text 0." not in server.prompts[-1]
    missing = tmp_path / "bad.md"
    missing.write_text("Rate {{question}}")
    result = judge(cli, server, "--prompt", missing, "--as", "bad-prompt", ok=False)
    assert result.exit_code == 2 and "{{answer}}" in result.stderr


def test_rules_ratings_cannot_land_under_a_teachers_name(cli, engine):
    from rater.store.ratings import get_or_create_rater
    cli("demo")
    with Session(engine) as session:
        get_or_create_rater(session, name="anna", kind="human")
        session.commit()
    result = cli("judge", "--rater", "rules", "--as", "anna", ok=False)
    assert result.exit_code == 2 and "belongs to a rater of kind 'human'" in result.stderr.replace("\n", " ")
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 0
