"""An OpenAI-compatible chat client with our own retries: 429 honours Retry-After, 5xx, timeouts and dropped
connections back off exponentially with jitter, and the library's own retries are off so none stack."""

import asyncio
import random
import time
from dataclasses import dataclass

import openai

from rater.core.errors import FatalRaterError, RaterError


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


class ChatClient:
    def __init__(self, endpoint: Endpoint, api_key: str) -> None:
        self.endpoint = endpoint
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=endpoint.base_url, max_retries=0,
                                         timeout=endpoint.timeout)
        self.limiter = RateLimiter(endpoint.rpm)
        self.succeeded = 0
        self.retries = 0

    def _backoff(self, attempt: int) -> float:
        return min(60.0, self.endpoint.retry_base * 2 ** (attempt - 1)) * (0.5 + random.random())

    async def complete(self, messages: list[dict], response_format: dict | None = None) -> Reply:
        last_error = "no attempt made"
        for attempt in range(1, self.endpoint.max_attempts + 1):
            if attempt > 1:
                self.retries += 1
            await self.limiter.wait()
            started = time.perf_counter()
            try:
                response = await self._create(messages, response_format)
            except openai.RateLimitError as error:
                last_error = "429 rate limited"
                delay = retry_after_seconds(error)
                await asyncio.sleep(delay if delay is not None else self._backoff(attempt))
                continue
            except (openai.APITimeoutError, openai.InternalServerError) as error:
                last_error = "timed out" if isinstance(error, openai.APITimeoutError) else f"{error.status_code} server error"
            except openai.APIConnectionError:
                last_error = "connection failed or dropped"
            except openai.APIStatusError as error:
                self._raise_fatal(error)
                last_error = f"{error.status_code} from the server"
                if error.status_code < 500:
                    raise RequestFailed(f"the server refused the request ({last_error})", attempt) from None
            else:
                self.succeeded += 1
                return self._reply(response, started, attempt)
            if attempt < self.endpoint.max_attempts:
                await asyncio.sleep(self._backoff(attempt))
        if not self.succeeded and last_error == "connection failed or dropped":
            raise FatalRaterError(f"Cannot reach the judge's server at {self.endpoint.base_url or 'the OpenAI API'}.",
                                  "check --base-url and that the server is running")
        raise RequestFailed(f"all {self.endpoint.max_attempts} attempts failed (last: {last_error})",
                            self.endpoint.max_attempts)

    async def _create(self, messages: list[dict], response_format: dict | None):
        extra = {"response_format": response_format} if response_format else {}
        if self.endpoint.max_tokens:
            extra["max_tokens"] = self.endpoint.max_tokens
        if self.endpoint.api == "completions":
            return await self.client.completions.create(model=self.endpoint.model, prompt=messages[-1]["content"],
                                                        temperature=self.endpoint.temperature, **extra)
        return await self.client.chat.completions.create(model=self.endpoint.model, messages=messages,
                                                         temperature=self.endpoint.temperature, **extra)

    def _raise_fatal(self, error: openai.APIStatusError) -> None:
        if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
            raise FatalRaterError(f"The judge's server rejected the API key ({error.status_code}).",
                                  "check the key in the variable named by --api-key-env") from None
        if isinstance(error, openai.NotFoundError):
            raise FatalRaterError(f"The server does not know the model {self.endpoint.model!r} (404).",
                                  "check --model against the models the server offers") from None

    @staticmethod
    def _reply(response, started: float, attempt: int) -> Reply:
        usage = getattr(response, "usage", None)
        choice = response.choices[0] if response.choices else None
        if choice is not None and hasattr(choice, "text") and not hasattr(choice, "message"):
            text = choice.text or ""  # the completions API
        else:
            text = (choice.message.content if choice and choice.message else None) or ""
        return Reply(text=text, prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                     completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                     latency_ms=int((time.perf_counter() - started) * 1000), attempts=attempt)

    async def close(self) -> None:
        await self.client.close()
