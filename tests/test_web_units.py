"""The rating page's checks, one at a time (the browser tests in tests/test_serve.py drive them end to end)."""

import pytest
from starlette.datastructures import MultiDict
from starlette.requests import Request

from rater.cli.teachers import check_http_url
from rater.core.errors import InputError
from rater.store.engine import create_store_engine
from rater.web.app import Limiter, RatingSite, WebConfig, parse_answer


def form(*pairs: tuple[str, str]) -> MultiDict:
    return MultiDict(list(pairs))


def test_an_answer_is_read_from_the_form_and_anything_else_is_refused():
    answer = parse_answer(form(("seq", "3"), ("action", "save"), ("tick", "7"), ("tick", "9"),
                               ("reason_8", "identical"), ("reason_10", "other"), ("other_10", " too long "),
                               ("reason_11", "made_up"), ("seconds", "4.5")))
    assert answer is not None
    assert (answer.action, answer.seq, answer.ticked, answer.seconds) == ("save", 3, {7, 9}, 4.5)
    assert answer.reasons == {8: "identical", 10: "too long"}  # an unknown reason value is dropped
    opened = parse_answer(form(("seq", "3"), ("action", "open:12")))
    assert opened is not None and (opened.action, opened.item_id) == ("open", 12)
    for bad in (form(("seq", "x")), form(("seq", "1"), ("action", "delete")), form(("seq", "1"), ("tick", "a")),
                form(("seq", "1"), ("action", "open:x")), form()):
        assert parse_answer(bad) is None


def test_a_link_may_make_only_so_many_requests_a_minute():
    now = [0.0]
    limiter = Limiter(3, lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # per link
    now[0] = 61.0
    assert limiter.allow("a")  # a minute later


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "ftp://school", "http://",
                                 "https://school/rater", "http://school?x=1", "http://sch ool", "data:text/html,x"])
def test_only_http_addresses_at_their_root_are_accepted(url):
    with pytest.raises(InputError):
        check_http_url(url, "--url")


def test_good_addresses_are_kept_without_a_trailing_slash():
    assert check_http_url("https://rating.school.example/", "--url") == "https://rating.school.example"
    assert check_http_url("http://10.0.0.5:8000", "--url") == "http://10.0.0.5:8000"


def request(origin: str | None, host: str = "127.0.0.1:8000") -> Request:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    return Request({"type": "http", "method": "POST", "path": "/rate", "headers": headers, "scheme": "http",
                    "server": ("127.0.0.1", 8000), "query_string": b""})


def test_a_writing_request_must_come_from_the_page_s_own_origin(tmp_path):
    site = RatingSite(WebConfig(create_store_engine(f"sqlite:///{tmp_path / 'w.db'}"),
                                public_url="https://rating.school.example", listen=("http://127.0.0.1:8000",)))
    assert site.same_origin(request("https://rating.school.example"))  # through the proxy
    assert site.same_origin(request("http://127.0.0.1:8000"))  # straight to the server
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null", None):
        assert not site.same_origin(request(origin)), origin
    assert not site.same_origin(request("http://evil.example", host="evil.example"))  # a Host of its own: no help


def test_the_csrf_token_belongs_to_the_teacher_and_the_process(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'w.db'}")
    one, other = RatingSite(WebConfig(engine)), RatingSite(WebConfig(engine))
    assert one.csrf("token-a") == one.csrf("token-a") != one.csrf("token-b")
    assert one.csrf("token-a") != other.csrf("token-a")  # a secret of each process
    assert "token-a" not in one.csrf("token-a")


def test_a_valid_link_is_looked_up_once_for_an_answer_and_its_next_page_and_a_revoked_one_writes_nothing(tmp_path,
                                                                                                      monkeypatch):
    import asyncio

    from rater.store.access import add_teacher, revoke_teacher
    from rater.store.engine import session_scope
    from rater.web import app as web

    engine = create_store_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with session_scope(engine) as session:
        token = add_teacher(session, name="anna")
    now = [100.0]
    site = RatingSite(WebConfig(engine, clock=lambda: now[0]))
    lookups = []
    real = web.teacher_for_token
    monkeypatch.setattr(web, "teacher_for_token", lambda *a, **k: lookups.append(1) or real(*a, **k))
    assert asyncio.run(site.teacher(token)) == "anna"
    now[0] += 0.5
    assert asyncio.run(site.teacher(token)) == "anna"  # the page after the answer: no second lookup
    assert len(lookups) == 1
    assert asyncio.run(site.teacher(token, organizer=True)) is None  # another kind of link is its own lookup
    assert asyncio.run(site.teacher("not-a-token")) is None
    assert asyncio.run(site.teacher("not-a-token")) is None  # an invalid token is never kept
    assert len(lookups) == 4
    with session_scope(engine) as session:
        revoke_teacher(session, name="anna")
    assert asyncio.run(site.teacher(token, fresh=True)) is None  # a write looks the link up: refused at once
    assert len(lookups) == 5
    now[0] += web.KNOWN_FOR
    assert asyncio.run(site.teacher(token)) is None  # revoked: refused once the name kept has run out
    assert asyncio.run(site.teacher(token)) is None
    assert len(lookups) == 7


async def test_an_unexpected_error_that_ends_a_teachers_rating_reaches_the_servers_log(caplog):
    """A teacher's page says "Rating ended (…)"; an error nobody foresaw (a bug) also goes to the server's log with
    its traceback, so the organizer can see what happened. An expected one (a RaterError) does not."""
    import asyncio
    import logging

    from rater.core.errors import RaterError
    from rater.web.sessions import TeacherSession

    session = TeacherSession(None, "anna", None, None)  # type: ignore[arg-type]  # only the run's end is used

    async def fails(error: Exception) -> None:
        raise error

    for error in (ValueError("a bug"), RaterError("The link was revoked.", "ask for a new one")):
        task = asyncio.ensure_future(fails(error))
        await asyncio.gather(task, return_exceptions=True)
        with caplog.at_level(logging.ERROR, logger="rater.web"):
            session._ended(task)
        assert session.state == "ended" and session.error is error
    assert "anna's rating ended on an unexpected error" in caplog.text and "ValueError: a bug" in caplog.text
    assert "revoked" not in caplog.text


async def test_a_rating_ended_by_the_database_going_away_says_so_and_logs_no_traceback(caplog, tmp_path):
    """The database away when a teacher's run needed it (opening, or closing a run whose save failed) ends the run:
    the page then says the database cannot be reached (503, in the teacher's language), not the error's class
    name, and the log has one line without a traceback."""
    import asyncio
    import logging

    from sqlalchemy.exc import OperationalError

    from rater.web.sessions import TeacherSession

    site = RatingSite(WebConfig(create_store_engine(f"sqlite:///{tmp_path / 's.db'}")))
    session = TeacherSession(None, "anna", None, None)  # type: ignore[arg-type]  # only the run's end is used

    async def fails() -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    task = asyncio.ensure_future(fails())
    await asyncio.gather(task, return_exceptions=True)
    with caplog.at_level(logging.WARNING, logger="rater.web"):
        session._ended(task)
    assert "anna's rating ended: the database could not be reached (OperationalError)" in caplog.text
    assert "Traceback" not in caplog.text and "unexpected" not in caplog.text
    request = Request({"type": "http", "method": "GET", "path": "/rate", "headers": [(b"accept-language", b"sv")],
                       "query_string": b""})
    page = site.rating_page(request, session, "token")
    assert page.status_code == 503
    body = page.body.decode()
    assert "OperationalError" not in body and site.texts(request).say("unavailable") in body


def test_the_serve_banner_names_teachers_and_organizers_apart(cli, monkeypatch):
    """`rater serve` says who can rate and, apart, who has an organizer's link (found listed as a teacher)."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # the banner only, nothing served
    cli("demo")
    cli("teachers", "add", "anna")
    cli("teachers", "add", "boss", "--organizer")
    banner = " ".join(cli("serve", "--port", "8799").output.split())
    assert "Teachers with a link: anna" in banner and "Teachers with a link: anna, boss" not in banner
    assert "Organizers (the study's status at /study): boss" in banner
