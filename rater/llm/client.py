"""An OpenAI-compatible client with our own retries: 429 honours Retry-After, 5xx, timeouts and dropped connections
back off exponentially with jitter, and the library's own retries are off so none stack. Every failure carries the
server's own reason; failures that no retry can fix stop the whole run."""

import asyncio
import errno
import json
import random
import time
from dataclasses import dataclass, replace

import openai

from rater.core.errors import FatalRaterError, RaterError, ServerStopped

REASON_CHARS = 300  # the server's reason is cut to this length in messages
FIRST_FAILURES = 3  # this many failed requests in a row, all alike, with none succeeding, stop the run
CIRCUIT_FAILURES = 5  # this many connection failures in a row, across requests, mean the server is gone
REFUSED = "connection refused"


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str | None = None
    timeout: float = 60.0
    max_attempts: int = 5
    rpm: float | None = None
    retry_base: float = 1.0  # seconds before the first retry; doubles each time
    temperature: float = 0.0
    structured: bool = False
    api: str = "chat"  # chat (messages) or completions (a raw prompt)
    max_tokens: int | None = None
    max_tokens_param: str = "max_tokens"  # newer OpenAI models want max_completion_tokens (switched when told)

    @property
    def where(self) -> str:
        return self.base_url or "the OpenAI API"


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    attempts: int


class RequestFailed(RaterError):
    """Every attempt of one request failed; the item is marked failed and the run goes on."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message, "a later run retries this item")
        self.attempts = attempts


class RateLimiter:
    """Spaces request starts so no more than `rpm` begin in any minute."""

    def __init__(self, rpm: float | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self.next_start = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next_start - now
            self.next_start = max(now, self.next_start) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


def retry_after_seconds(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return min(max(float(value), 0.0), 120.0) if value is not None else None
    except ValueError:
        return None


def server_reason(error: openai.APIStatusError) -> str:
    """What the server said: its error message, FastAPI's `detail`, or the body text, cut short."""
    body = error.body
    if isinstance(body, dict):
        text = body.get("message") or body.get("detail") or json.dumps(body, ensure_ascii=False)
    else:
        text = str(body) if body else ""
    text = " ".join(str(text).split()) or "no reason given"
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def connection_failure(error: openai.APIConnectionError) -> str:
    """What went wrong on the way. openai's aiohttp transport reports a refused or dropped connection as a
    timeout too, so the cause chain decides: only a TimeoutError in it is a timeout."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, ConnectionRefusedError) or getattr(getattr(cause, "os_error", None), "errno",
                                                                None) == errno.ECONNREFUSED:
            return REFUSED
        if isinstance(cause, ConnectionError) or type(cause).__name__ in ("ServerDisconnectedError",
                                                                           "ClientConnectorError"):
            return "connection failed or dropped"
        cause = cause.__cause__ or cause.__context__
    return "timed out" if isinstance(error, openai.APITimeoutError) else "connection failed or dropped"


class ChatClient:
    def __init__(self, endpoint: Endpoint, api_key: str) -> None:
        self.endpoint = endpoint
        # aiohttp is openai's transport for many requests at once (httpx's pool checks every idle connection on
        # each request); bodies go out as built here and answers are read as JSON, without the SDK's per-request
        # type transforms, which cost more CPU than everything else at a few hundred requests a second
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=endpoint.base_url, max_retries=0,
                                         timeout=endpoint.timeout, http_client=openai.DefaultAioHttpClient())
        self.limiter = RateLimiter(endpoint.rpm)
        self.succeeded = 0
        self.retries = 0
        self.failed: list[str] = []  # reasons of requests that failed before any succeeded
        self.connection_failures = 0  # in a row, across requests: refused, reset or timed out
        self.fatal: FatalRaterError | None = None  # once the server has said no for good, nothing more is sent

    def _backoff(self, attempt: int) -> float:
        return min(60.0, self.endpoint.retry_base * 2 ** (attempt - 1)) * (0.5 + random.random())

    async def complete(self, messages: list[dict], response_format: dict | None = None) -> Reply:
        try:
            return await self._complete(messages, response_format)
        except FatalRaterError as fatal:
            self.fatal = self.fatal or fatal
            raise

    async def _complete(self, messages: list[dict], response_format: dict | None) -> Reply:
        last_error = "no attempt made"
        attempts = self.endpoint.max_attempts
        attempt = 0
        while attempt < attempts:
            attempt += 1
            if attempt > 1:
                self.retries += 1
            await self.limiter.wait()
            if self.fatal is not None:
                raise self.fatal
            started = time.perf_counter()
            sent_param = self.endpoint.max_tokens_param
            try:
                response = await self._create(messages, response_format)
            except openai.RateLimitError as error:
                self._answered()
                self._raise_fatal(error)
                last_error = f"429 rate limited: {server_reason(error)}"
                delay = retry_after_seconds(error)
                if attempt < attempts:  # never wait after the last attempt
                    await asyncio.sleep(delay if delay is not None else self._backoff(attempt))
                continue
            except openai.InternalServerError as error:
                self._answered()
                last_error = f"{error.status_code} server error: {server_reason(error)}"
            except openai.APIConnectionError as error:
                last_error = connection_failure(error)
                self._connection_failed(last_error)
            except ValueError as error:  # a 200 whose body is not the JSON of an answer
                self._answered()
                last_error = f"unreadable answer: {error}"
            except openai.APIStatusError as error:
                self._answered()
                if self._switch_max_tokens_param(error, sent_param):
                    attempt -= 1  # the same attempt again, with the parameter the server asked for
                    continue
                self._raise_fatal(error)
                last_error = f"{error.status_code} from the server: {server_reason(error)}"
            else:
                self._answered()
                self.succeeded += 1
                return self._reply(response, started, attempt)
            if attempt < attempts:
                await asyncio.sleep(self._backoff(attempt))
        self._raise_if_all_fail(last_error)
        raise RequestFailed(f"all {attempts} attempts failed (last: {last_error})", attempts)

    def _answered(self) -> None:
        """The server answered (even with an error): it is alive."""
        self.connection_failures = 0

    def _connection_failed(self, what: str) -> None:
        """A connection refused, reset or timed out. Refused before anything succeeded: nobody listens there, said at
        once. After a success, CIRCUIT_FAILURES in a row across all requests: the server is gone, and the run stops."""
        self.connection_failures += 1
        if not self.succeeded and what == REFUSED:
            self.fatal = self.fatal or FatalRaterError(
                f"Cannot reach the server at {self.endpoint.where}: the connection was refused.",
                "check --base-url and that the server is running")
            raise self.fatal
        if self.succeeded and self.connection_failures >= CIRCUIT_FAILURES:
            self.fatal = self.fatal or ServerStopped(
                f"The server at {self.endpoint.where} stopped answering ({self.connection_failures} connections in a "
                f"row {what}).", "start the server again and rerun: the run resumes where it stopped")
            raise self.fatal

    async def _create(self, messages: list[dict], response_format: dict | None) -> dict:
        """POST the request body as it is and return the answer's JSON (the SDK still adds the key and base URL
        and raises its status errors)."""
        body = {"model": self.endpoint.model, "temperature": self.endpoint.temperature}
        if self.endpoint.api == "completions":
            body["prompt"] = messages[-1]["content"]
        else:
            body["messages"] = messages
        if response_format:
            body["response_format"] = response_format
        if self.endpoint.max_tokens:
            body[self.endpoint.max_tokens_param] = self.endpoint.max_tokens
        path = "/completions" if self.endpoint.api == "completions" else "/chat/completions"
        answer = json.loads(await self.client.post(path, body=body, cast_to=bytes))
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise ValueError("no choices in it")
        return answer

    def _switch_max_tokens_param(self, error: openai.APIStatusError, sent_param: str) -> bool:
        """Newer OpenAI models refuse `max_tokens` and name `max_completion_tokens` instead: switch (once for all
        requests) and send this one again."""
        if (error.status_code == 400 and self.endpoint.max_tokens and sent_param == "max_tokens"
                and "max_completion_tokens" in server_reason(error)):
            self.endpoint = replace(self.endpoint, max_tokens_param="max_completion_tokens")
            return True
        return False

    def _raise_fatal(self, error: openai.APIStatusError) -> None:
        """Failures no retry can fix stop the run with the server's reason."""
        where, reason = self.endpoint.where, server_reason(error)
        if isinstance(error, openai.RateLimitError):
            if error.code == "insufficient_quota" or "insufficient_quota" in str(error.body):
                raise FatalRaterError(f"The server at {where} says the account has no quota left: {reason}",
                                      "add credit to the account or use another key") from None
            return
        if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
            raise FatalRaterError(f"The server at {where} rejected the API key ({error.status_code}): {reason}",
                                  "check the key in the variable named by --api-key-env") from None
        if isinstance(error, openai.NotFoundError):
            raise FatalRaterError(f"The server at {where} does not know the model {self.endpoint.model!r} (404): "
                                  f"{reason}", "check --model against the models the server offers") from None
        if 400 <= error.status_code < 500:
            raise FatalRaterError(f"The server at {where} refused the request ({error.status_code}): {reason}",
                                  "check --model and the options against what the server accepts") from None

    def _raise_if_all_fail(self, last_error: str) -> None:
        """The first requests all failing alike, with none succeeding, is the server's answer to every request
        (a wrong model on an unpinned server, a server that cannot start the model): stop rather than fail all."""
        if self.succeeded:
            return
        if last_error in ("connection failed or dropped", REFUSED):
            raise FatalRaterError(f"Cannot reach the server at {self.endpoint.where}.",
                                  "check --base-url and that the server is running")
        self.failed.append(last_error)
        if len(self.failed) >= FIRST_FAILURES and len(set(self.failed)) == 1:
            hint = ("raise --timeout, or pass --concurrency 1 for a server that answers one request at a time"
                    if last_error == "timed out" else "check --model and the server's log")
            raise FatalRaterError(f"The first {len(self.failed)} requests to {self.endpoint.where} all failed alike, "
                                  f"none succeeded: {last_error}", hint)

    @staticmethod
    def _reply(answer: dict, started: float, attempt: int) -> Reply:
        choice = answer["choices"][0] if answer["choices"] else {}
        if "message" in choice:
            text = (choice["message"] or {}).get("content")
        else:
            text = choice.get("text")  # the completions API
        usage = answer.get("usage") or {}
        return Reply(text=text if isinstance(text, str) else "", prompt_tokens=usage.get("prompt_tokens") or 0,
                     completion_tokens=usage.get("completion_tokens") or 0,
                     latency_ms=int((time.perf_counter() - started) * 1000), attempts=attempt)

    async def close(self) -> None:
        await self.client.close()
