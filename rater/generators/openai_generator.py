"""The `openai` generator: any OpenAI-compatible server (chat or completions) runs the SPEC section 3 loop."""

import asyncio
from typing import ClassVar, Sequence

from rater.core.domain import ItemView
from rater.core.errors import InputError, ServerStopped
from rater.generators.base import Generator, generate_with_loop
from rater.llm.client import ChatClient, Endpoint, RequestFailed
from rater.llm.keys import read_api_key


class OpenAIGenerator(Generator):
    name: ClassVar[str] = "openai"
    default_batch_size: ClassVar[int] = 32

    def __init__(self, endpoint: Endpoint, key: str, concurrency: int = 8) -> None:
        self.client = ChatClient(endpoint, key)
        self.slots = asyncio.Semaphore(concurrency)
        self.failed_requests = 0

    @classmethod
    def from_options(cls, *, model: str | None = None, base_url: str | None = None, api_key_env: str | None = None,
                     api: str = "chat", temperature: float = 0.7, max_tokens: int = 256, concurrency: int = 8,
                     max_attempts: int = 5, retry_base: float = 1.0, timeout: float = 60.0, **_ignored) -> "OpenAIGenerator":
        if not model:
            raise InputError("The openai generator needs --model.", "pass the model name the server offers")
        endpoint = Endpoint(model=model, base_url=base_url, api=api, temperature=temperature, max_tokens=max_tokens,
                            max_attempts=max_attempts, retry_base=retry_base, timeout=timeout)
        return cls(endpoint, read_api_key(api_key_env, base_url=base_url), concurrency)

    async def _one(self, prompt: str) -> str:
        async with self.slots:
            try:
                reply = await self.client.complete([{"role": "user", "content": prompt}])
            except RequestFailed:
                self.failed_requests += 1
                return ""  # counts as an attempt that found nothing; the loop's bound still holds
            except ServerStopped as stopped:  # the batch ends at once (every later request fails alike) and is saved
                self.stopped = stopped
                return ""
            return reply.text

    async def _complete(self, prompts: list[str]) -> list[str]:
        return list(await asyncio.gather(*(self._one(p) for p in prompts)))

    async def generate(self, items: Sequence[ItemView], num: int) -> list[list[str]]:
        return await generate_with_loop(items, num, self._complete)

    async def close(self) -> None:
        await self.client.close()
