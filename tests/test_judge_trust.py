"""A judge you can trust, measured: consistency over orders and repeats, `--orders auto`, calibrations tied to the
prompt and model they were fitted with, the agreement gate before judge labels become training data, panels of
judges, and cost per 1,000 distractors. Judges are real loopback chat-completions servers (tests/fake_openai.py)."""

import json
import random

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.tables import Distractor, JudgeRequest, RaterRecord, Rating
from tests.fake_openai import DISTRACTOR_LINE, FakeOpenAI, default_scores

ITEMS = 6


@pytest.fixture(autouse=True)
def judge_key(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGE_KEY", "test-key")
    monkeypatch.setenv("RATER_HOME", str(tmp_path / "home"))


@pytest.fixture
def items(cli, tmp_path):
    path = tmp_path / "items.jsonl"
    rows = [{"context": f"Text {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}",
             "distractors": [f"bra {n}", f"dålig {n}", f"mitten {n}"]} for n in range(ITEMS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("import", path)


def reply(scores: list[float]) -> str:
    return "Step by step.\n$" + json.dumps(scores) + "$"


def position_biased(prompt: str) -> str:
    """Content scores, except that the option shown first always gets 5."""
    scores = default_scores(prompt)
    return reply([5.0] + scores[1:])


def serve(default=None) -> FakeOpenAI:
    return FakeOpenAI(**({"default": default} if default else {})).start()


def judge(cli, server, *extra, name="judge-model", ok=True):
    return cli("judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "JUDGE_KEY",
               "--retry-base", "0.01", "--as", name, *extra, ok=ok)


def report(cli) -> dict:
    return json.loads(cli("report", "--format", "json").stdout)


def test_consistency_shows_a_position_biased_judge_and_not_an_order_independent_one(cli, items):
    fair, biased = serve(), serve(position_biased)
    try:
        judge(cli, fair, "--orders", "3", name="fair")
        judge(cli, biased, "--orders", "3", name="biased")
    finally:
        fair.stop()
        biased.stop()
    judges = report(cli)["judges"]
    fair_c, biased_c = judges["fair"]["consistency"], judges["biased"]["consistency"]
    assert fair_c["orders"] == 1.0 and fair_c["orders_n"] == 3 * ITEMS and fair_c["repeats"] is None
    assert biased_c["orders"] < 0.8  # the first place decides, so the decision moves with the order
    assert biased_c["by_position"]["1"]["accepted_rate"] == 1.0  # the bias that was put in, shown
    assert fair_c["by_position"]["1"]["accepted_rate"] < 1.0
    assert judges["fair"]["cost"]["cost_per_1000"] is None  # no prices for it anywhere: no cost, never a guess
    table = " ".join(cli("report").output.split())
    assert "Judges' consistency and cost" in table and "(one order)" not in table


def test_one_order_gives_no_order_consistency(cli, items):
    fair = serve()
    try:
        judge(cli, fair, name="fair")
    finally:
        fair.stop()
    assert report(cli)["judges"]["fair"]["consistency"]["orders"] is None


def test_repeats_are_asked_anew_and_measure_a_noisy_judge(cli, engine, items):
    rng = random.Random(0)
    steady = serve()
    noisy = serve(lambda prompt: reply([float(rng.randint(1, 5)) for _ in DISTRACTOR_LINE.finditer(
        prompt.split("Distractors:", 1)[-1])]))
    try:
        judge(cli, steady, "--repeats", "3", name="steady")
        assert steady.requests == 3 * ITEMS  # the cache answered none of the repeats
        judge(cli, noisy, "--repeats", "3", name="noisy")
    finally:
        steady.stop()
        noisy.stop()
    judges = report(cli)["judges"]
    assert judges["steady"]["consistency"]["repeats"] == 1.0
    assert judges["steady"]["consistency"]["repeats_n"] == 3 * ITEMS
    assert judges["noisy"]["consistency"]["repeats"] < 0.8


def test_orders_auto_asks_a_third_order_only_where_two_disagree(cli, items):
    fair, biased = serve(), serve(position_biased)
    try:
        out = " ".join(judge(cli, fair, "--orders", "auto", name="fair").output.split())
        assert fair.requests == 2 * ITEMS  # never a third: the two orders agree on every item
        assert f"a third order for 0 of {ITEMS} items; {2 * ITEMS} orders asked where 3 fixed orders take {3 * ITEMS}" in out
        out = " ".join(judge(cli, biased, "--orders", "auto", name="biased").output.split())
        assert 2 * ITEMS < biased.requests <= 3 * ITEMS
        assert f"a third order for {biased.requests - 2 * ITEMS} of {ITEMS} items" in out
    finally:
        fair.stop()
        biased.stop()
    result = cli("judge", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--orders", "some", ok=False)
    assert result.exit_code == 2 and "neither a number of orders" in result.output


def teacher(engine, name: str, label) -> None:
    """A teacher rating every distractor, accepting where label(text) says so."""
    with Session(engine) as session, session.begin():
        rater_id = get_or_create_rater(session, name=name, kind="human").id
        for item_id, distractor_id, text in session.execute(select(Distractor.item_id, Distractor.id, Distractor.text)):
            save_judgements(session, rater_id=rater_id, item_id=item_id,
                            judgements=[Judgement(distractor_id, label(text))])


def test_a_calibration_is_not_applied_to_a_run_with_another_prompt_or_model(cli, items, engine, tmp_path):
    teacher(engine, "anna", lambda text: text.startswith("bra"))
    fair = serve()
    try:
        judge(cli, fair, name="gpt")
        saved = cli("calibrate", "--judge", "gpt", "--against", "anna", "--min-shared", "5", "--folds", "2", "--save")
        assert "teachers' own agreement: needs two teachers" in " ".join(saved.output.split())
        written = (tmp_path / "home" / "calibrations.yaml").read_text()
        assert "prompt_sha256:" in written and "model: judge-model" in written
        same = " ".join(judge(cli, fair, name="gpt").output.split())
        assert "from calibrations.yaml" in same and "not applied" not in same
        prompt = tmp_path / "prompt.txt"
        prompt.write_text("Rate each distractor 1-5.\n{{question}}\n{{answer}}\n{{distractors}}\n")
        other = " ".join(judge(cli, fair, "--prompt", prompt, name="gpt").output.split())
        assert "the saved calibration is not applied: it was fitted with another prompt" in other
        context = " ".join(judge(cli, fair, "--with-context", name="gpt").output.split())
        assert "not applied: it was fitted with another prompt" in context
        model = " ".join(cli("judge", "--model", "other-model", "--base-url", fair.url, "--api-key-env", "JUDGE_KEY",
                             "--as", "gpt", "--limit", "0", ok=False).output.split())
        assert "not applied: it was fitted for model judge-model, this run asks other-model" in model
    finally:
        fair.stop()


def test_calibrate_sets_the_judges_kappa_beside_the_teachers_own(cli, items, engine):
    teacher(engine, "anna", lambda text: not text.startswith("dålig"))
    teacher(engine, "bo", lambda text: text.startswith("bra") or text.endswith(("1", "2")))
    fair = serve()
    try:
        judge(cli, fair, name="gpt")
    finally:
        fair.stop()
    out = " ".join(cli("calibrate", "--judge", "gpt", "--against", "anna,bo", "--min-shared", "5",
                       "--folds", "2").output.split())
    assert "teachers' own agreement: anna vs bo kappa" in out and "(n 18)" in out
    assert "the judge (fitted rule) against each teacher alone: anna" in out and "the teachers' own kappa (" in out
    assert "range" not in out  # two teachers: one pair, one figure


def test_the_agreement_gate_refuses_a_judge_below_the_kappa_and_passes_one_above(cli, items, engine, tmp_path):
    fair = serve()
    try:
        judge(cli, fair, name="gpt")  # accepts bra and mitten, rejects dålig
    finally:
        fair.stop()
    out = tmp_path / "kto.jsonl"
    none = cli("export", "kto", "-o", out, "--split", "all", "--min-kappa", "0.4", ok=False)
    assert none.exit_code == 2 and "cannot be checked: no teacher has rated" in " ".join(none.output.split())
    teacher(engine, "anna", lambda text: text.startswith("dålig"))  # the opposite of the judge throughout
    refused = cli("export", "kto", "-o", out, "--split", "all", "--min-kappa", "0.4", ok=False)
    said = " ".join(refused.output.replace("│", " ").split())
    assert refused.exit_code == 2 and "gpt: kappa -0.800 against the teachers' majority on 18 shared" in said
    assert not out.exists()
    dpo = cli("train", "dpo", "--model", tmp_path, "-o", tmp_path / "dpo", "--split", "all", "--min-kappa", "0.4",
              ok=False)
    assert dpo.exit_code == 2 and "gpt: kappa -0.800" in " ".join(dpo.output.replace("│", " ").split())
    teacher(engine, "anna", lambda text: not text.startswith("dålig"))  # now the judge's labels throughout
    passed = cli("export", "kto", "-o", out, "--split", "all", "--min-kappa", "0.4", "--min-shared", "10")
    assert "agreement gate passed: gpt: kappa 1.000" in " ".join(passed.output.split()) and out.exists()
    few = cli("export", "kto", "-o", out, "--split", "all", "--min-kappa", "0.4", "--min-shared", "19", ok=False)
    assert few.exit_code == 2 and "on 18 shared distractors (needs kappa >= 0.4 on at least 19)" in " ".join(
        few.output.replace("│", " ").split())
    only_teachers = cli("export", "pref", "-o", tmp_path / "pref.json", "--split", "all", "--rater", "anna",
                        "--min-kappa", "0.4")
    assert "agreement gate" not in only_teachers.output  # teachers' labels need no gate
    for bad in ("1.5", "-2"):
        result = cli("export", "kto", "-o", tmp_path / "bad.jsonl", "--min-kappa", bad, ok=False)
        assert result.exit_code == 2 and "outside -1..1" in result.output and not (tmp_path / "bad.jsonl").exists()


def member_ratings(engine, name: str, scores_of) -> None:
    """A judge rating every distractor with a score; accepted above 3."""
    with Session(engine) as session, session.begin():
        rater_id = get_or_create_rater(session, name=name, kind="llm").id
        for item_id, distractor_id, text in session.execute(select(Distractor.item_id, Distractor.id, Distractor.text)):
            score = scores_of(text)
            if score is not None:
                save_judgements(session, rater_id=rater_id, item_id=item_id,
                                judgements=[Judgement(distractor_id, score > 3, score=score)])


def panel_labels(engine, name: str) -> dict[str, bool]:
    with Session(engine) as session:
        return dict(session.execute(select(Distractor.text, Rating.accepted).join(Rating, Rating.distractor_id == Distractor.id)
                                    .join(RaterRecord).where(RaterRecord.name == name)).all())


def test_a_panel_takes_its_members_majority_or_mean_and_follows_them(cli, items, engine, tmp_path):
    member_ratings(engine, "a", lambda t: 4.0 if t.startswith(("bra", "mitten")) else 1.0)
    member_ratings(engine, "b", lambda t: 4.0 if t.startswith("bra") else 2.0)
    member_ratings(engine, "c", lambda t: (5.0 if t.startswith("bra") else 1.0) if not t.endswith("5") else None)
    out = " ".join(cli("panel", "create", "jury", "--judges", "a,b,c").output.split())
    assert "Panel jury: majority of a, b, c; 15 distractors labelled" in out  # item 5: c has not rated it
    labels = panel_labels(engine, "jury")
    assert labels["bra 0"] and not labels["mitten 0"] and not labels["dålig 0"] and "bra 5" not in labels
    cli("panel", "create", "avg", "--judges", "a,b,c", "--rule", "mean")
    means = panel_labels(engine, "avg")  # item 0: bra (4+4+5)/3, mitten (4+2+1)/3, dålig 4/3 against the weighted limit
    assert means["bra 0"] and not means["mitten 0"] and not means["dålig 0"]
    assert "jury (panel: majority of a, b, c)" in cli("raters").output
    member_ratings(engine, "c", lambda t: 5.0 if t == "bra 5" else 1.0 if t.endswith("5") else None)  # c rates more
    teacher(engine, "anna", lambda text: text.startswith("bra"))
    data = report(cli)
    assert panel_labels(engine, "jury")["bra 5"]  # the report brought the panel up to date
    assert data["judges"]["jury"]["members"] == ["a", "b", "c"]
    assert data["judges"]["jury"]["vs"]["anna"]["kappa"] == 1.0
    assert {m: data["judges"][m]["vs"]["anna"]["kappa"] < 1.0 for m in "ab"} == {"a": True, "b": False}
    gate = cli("export", "kto", "-o", tmp_path / "k.jsonl", "--split", "all", "--rater", "jury", "--min-kappa", "0.9",
               "--min-shared", "18")
    assert "agreement gate passed: jury: kappa 1.000" in " ".join(gate.output.split())


@pytest.mark.parametrize("args, message", [
    (("jury", "--judges", "a,nosuch"), "No rater named nosuch"),
    (("jury", "--judges", "a,jury"), "cannot be one of its own members"),
    (("jury", "--judges", "a"), "at least two different members"),
    (("jury", "--judges", "a,anna"), "anna is a teacher"),
    (("jury", "--judges", "a,b", "--rule", "vote"), "Unknown panel rule"),
    (("a", "--judges", "b,c"), "A rater named a exists already"),
])
def test_bad_panels_are_refused_with_nothing_written(cli, items, engine, args, message):
    for name in ("a", "b", "c"):
        member_ratings(engine, name, lambda t: 4.0)
    teacher(engine, "anna", lambda text: True)
    result = cli("panel", "create", *args, ok=False)
    assert result.exit_code == 2 and message in " ".join(result.output.replace("│", " ").split())
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(RaterRecord).where(RaterRecord.kind == "panel")
                               ).scalar_one() == 0


def test_the_report_gives_tokens_and_cost_per_1000_distractors_from_the_judges_file(cli, items, engine, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "judges.yaml").write_text("judges:\n  gpt:\n    model: judge-model\n    price_in: 2.5\n    price_out: 10\n")
    fair = serve()
    try:
        cli("judge", "--judge", "gpt", "--base-url", fair.url, "--api-key-env", "JUDGE_KEY")
    finally:
        fair.stop()
    with Session(engine) as session:
        prompt, completion = session.execute(select(func.sum(JudgeRequest.prompt_tokens),
                                                    func.sum(JudgeRequest.completion_tokens))).one()
    cost = report(cli)["judges"]["gpt"]["cost"]
    assert cost["distractors"] == 3 * ITEMS and cost["requests"] == ITEMS
    assert cost["tokens_per_1000"] == pytest.approx((prompt + completion) * 1000 / (3 * ITEMS))
    assert cost["cost_per_1000"] == pytest.approx((prompt * 2.5 + completion * 10) / 1e6 * 1000 / (3 * ITEMS))
    (home / "judges.yaml").unlink()  # the prices the run used were recorded with it
    assert report(cli)["judges"]["gpt"]["cost"]["cost_per_1000"] == pytest.approx(cost["cost_per_1000"])


def test_answers_from_the_cache_count_for_the_judge_that_used_them(cli, engine, items):
    fair = serve()
    try:
        judge(cli, fair, name="first")
        judge(cli, fair, "--orders", "3", name="fourth")  # its first order comes from the cache
        assert fair.requests == ITEMS + 2 * ITEMS
    finally:
        fair.stop()
    judges = report(cli)["judges"]
    assert judges["fourth"]["consistency"]["orders_n"] == 3 * ITEMS
    assert judges["fourth"]["cost"]["requests"] == 3 * ITEMS and judges["fourth"]["cost"]["tokens_per_1000"] > 0
    with Session(engine) as session:
        cached = session.execute(select(func.count()).select_from(JudgeRequest).where(JudgeRequest.status == "cached")
                                 ).scalar_one()
    assert cached == ITEMS
    csv_text = cli("report", "--format", "csv").stdout
    assert "consistency,fourth,,,,1.0,,,orders,18" in csv_text and "\ncost,fourth," in csv_text


def test_orders_auto_looks_at_the_orders_not_at_the_repeats(cli, items):
    seen: dict[str, int] = {}

    def flips_on_a_repeat(prompt: str) -> str:  # the same order asked again: the opposite scores
        seen[prompt] = seen.get(prompt, 0) + 1
        scores = default_scores(prompt)
        return reply(scores if seen[prompt] == 1 else [6.0 - s for s in scores])
    server = serve(flips_on_a_repeat)
    try:
        out = " ".join(judge(cli, server, "--orders", "auto", "--repeats", "2", "--concurrency", "1",
                             name="flip").output.split())
    finally:
        server.stop()
    assert f"a third order for 0 of {ITEMS} items" in out
    consistency = report(cli)["judges"]["flip"]["consistency"]
    assert consistency["orders"] == 1.0 and consistency["repeats"] < 0.5


def test_calibrate_save_makes_the_judges_recorded_rule_the_calibrated_one(cli, items, engine):
    teacher(engine, "anna", lambda text: text.startswith("bra"))
    fair = serve()
    try:
        judge(cli, fair, name="gpt")
    finally:
        fair.stop()
    cli("calibrate", "--judge", "gpt", "--against", "anna", "--min-shared", "5", "--folds", "2", "--save")
    with Session(engine) as session:
        settings = json.loads(session.execute(select(RaterRecord.settings).where(RaterRecord.name == "gpt")).scalar_one())
    assert settings["acceptance"]["rule"] == "threshold"  # what consistency and uncertainty now decide with


def test_prices_come_from_the_judges_run_whatever_its_name(cli, items, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "priced.yaml").write_text("judges:\n  priced:\n    model: judge-model\n    price_in: 1\n    price_out: 1\n")
    fair = serve()
    try:
        cli("judge", "--judge", "priced", "--config", home / "priced.yaml", "--base-url", fair.url,
            "--api-key-env", "JUDGE_KEY", "--as", "other-name")
    finally:
        fair.stop()
    assert report(cli)["judges"]["other-name"]["cost"]["cost_per_1000"] > 0


def test_a_panel_drops_a_label_its_members_no_longer_give_and_can_be_deleted(cli, items, engine):
    member_ratings(engine, "a", lambda t: 4.0)
    member_ratings(engine, "b", lambda t: 4.0)
    member_ratings(engine, "r", lambda t: 4.0)
    cli("panel", "create", "duo", "--judges", "a,b")
    cli("panel", "create", "meta", "--judges", "duo,r")  # a panel of a panel
    assert panel_labels(engine, "duo")["bra 0"] and panel_labels(engine, "meta")["bra 0"]
    member_ratings(engine, "b", lambda t: 1.0 if t == "bra 0" else None)  # now an even split on bra 0
    report(cli)
    assert "bra 0" not in panel_labels(engine, "duo") and "bra 0" not in panel_labels(engine, "meta")
    mean = cli("panel", "create", "avg", "--judges", "duo,a", "--rule", "mean", ok=False)
    assert mean.exit_code == 2 and "duo is not an LLM judge" in " ".join(mean.output.replace("│", " ").split())
    used = cli("panel", "delete", "duo", ok=False)
    assert used.exit_code == 2 and "is a member of meta" in " ".join(used.output.replace("│", " ").split())
    assert "Panel meta removed, with its 17 labels" in " ".join(cli("panel", "delete", "meta").output.split())
    cli("panel", "delete", "duo")
    assert "No panels yet" in cli("panel", "list").output


def test_min_shared_without_min_kappa_is_refused(cli, items, tmp_path):
    result = cli("export", "kto", "-o", tmp_path / "k.jsonl", "--min-shared", "10", ok=False)
    assert result.exit_code == 2 and "without --min-kappa there is no gate" in " ".join(
        result.output.replace("│", " ").split())
