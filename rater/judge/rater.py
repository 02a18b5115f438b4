"""The LLM judge as a Rater: one request per item (per order), cached by request key, scores to acceptances."""

import asyncio
import json
import random
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import Engine, select

from rater.core.domain import DistractorView, ItemView, Judgement
from rater.judge.prompt import STRUCTURED_SCHEMA, render_prompt, request_key
from rater.judge.scoring import Acceptance, ParseFailure, parse_scores, rationale_of
from rater.llm.client import ChatClient, Endpoint, RequestFailed
from rater.raters.base import Rater
from rater.store.engine import session_scope
from rater.store.tables import JudgeRequest

REASK = ("Your answer did not end with a usable score list ({problem}). Give exactly {n} scores between 1 and 5, "
         "in the order of the distractors, as a JSON list between dollar signs, for example $[{example}]$.")


@dataclass
class JudgeStats:
    requests: int = 0
    cached: int = 0
    parse_failures: int = 0
    failed_items: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_in: float = 0.0  # per million tokens
    price_out: float = 0.0

    @property
    def cost(self) -> float:
        return (self.prompt_tokens * self.price_in + self.completion_tokens * self.price_out) / 1_000_000


@dataclass(frozen=True)
class JudgeSettings:
    template: str
    with_context: bool = False
    orders: int = 1
    reasks: int = 2
    acceptance: Acceptance = Acceptance()


class LLMJudge(Rater):
    kind: ClassVar[str] = "llm"
    default_name: ClassVar[str] = "llm-judge"

    def __init__(self, name: str | None, *, engine: Engine, endpoint: Endpoint, api_key: str, settings: JudgeSettings,
                 concurrency: int = 8, stats: JudgeStats | None = None) -> None:
        super().__init__(name or endpoint.model)
        self.engine = engine
        self.endpoint = endpoint
        self.client = ChatClient(endpoint, api_key)
        self.config = settings
        self.max_concurrency = concurrency  # instance-level capability
        self.in_flight = asyncio.Semaphore(concurrency)  # with --orders K an item sends K requests: cap them all
        self.stats = stats or JudgeStats()
        self.rater_id: int | None = None

    def started(self, rater_id: int) -> None:
        self.rater_id = rater_id

    async def finished(self) -> None:
        await self.client.close()

    def settings(self) -> dict:
        return {"model": self.endpoint.model, "base_url": self.endpoint.base_url, "orders": self.config.orders,
                "with_context": self.config.with_context, "structured": self.endpoint.structured,
                "acceptance": self.config.acceptance.as_dict(),
                "prompt_sha256": request_key("", [{"content": self.config.template}], {})}

    def orderings(self, item: ItemView) -> list[tuple[DistractorView, ...]]:
        """The stored order first, then K-1 shuffles seeded by the item, so reruns send identical requests."""
        orders = [item.distractors]
        rng = random.Random(item.id)
        for _ in range(self.config.orders - 1):
            shuffled = list(item.distractors)
            rng.shuffle(shuffled)
            orders.append(tuple(shuffled))
        return orders

    async def rate(self, item: ItemView) -> list[Judgement]:
        results = await asyncio.gather(*(self._score(item, order) for order in self.orderings(item)),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.stats.failed_items += 1
            if not all(isinstance(f, (RequestFailed, ParseFailure)) for f in failures):
                raise failures[0]
            raise RequestFailed(f"no usable scores: {failures[0]}", 0)
        totals: dict[int, list[float]] = {}
        for scores, _ in results:
            for distractor_id, score in scores.items():
                totals.setdefault(distractor_id, []).append(score)
        mean = {d: sum(s) / len(s) for d, s in totals.items()}
        limit = self.config.acceptance.limit(list(mean.values()))
        rationale = results[0][1]
        return [Judgement(d.id, mean[d.id] > limit, score=mean[d.id], limit=limit, rationale=rationale)
                for d in item.distractors]

    def _messages(self, item: ItemView, order: tuple[DistractorView, ...]) -> list[dict]:
        prompt = render_prompt(self.config.template, question=item.question, answer=item.answer,
                               distractors=[d.text for d in order],
                               context=item.context if self.config.with_context else None,
                               structured=self.endpoint.structured)
        return [{"role": "user", "content": prompt}]

    async def _score(self, item: ItemView, order: tuple[DistractorView, ...]) -> tuple[dict[int, float], str]:
        messages = self._messages(item, order)
        params = {"temperature": self.endpoint.temperature, "structured": self.endpoint.structured}
        key = request_key(self.endpoint.model, messages, params)
        cached = self._cached(key)
        if cached is not None:
            self.stats.cached += 1
            return dict(zip([d.id for d in order], json.loads(cached.scores))), cached.rationale
        fmt = {"type": "json_schema", "json_schema": STRUCTURED_SCHEMA} if self.endpoint.structured else None
        for asked in range(self.config.reasks + 1):
            try:
                async with self.in_flight:
                    reply = await self.client.complete(messages, fmt)
            except RequestFailed as failure:
                self._record(key, item.id, order, "failed", error=failure.message, attempts=failure.attempts)
                raise
            self._count(reply)
            try:
                scores = parse_scores(reply.text, len(order))
            except ParseFailure as problem:
                self.stats.parse_failures += 1
                self._record(key, item.id, order, "parse_error", reply=reply, error=str(problem))
                messages = messages + [{"role": "assistant", "content": reply.text},
                                       {"role": "user", "content": REASK.format(
                                           problem=problem, n=len(order), example=",".join(["3"] * len(order)))}]
                if asked == self.config.reasks:
                    raise
                continue
            self._record(key, item.id, order, "ok", reply=reply, scores=scores)
            return dict(zip([d.id for d in order], scores)), rationale_of(reply.text)
        raise AssertionError("unreachable")

    def _count(self, reply) -> None:
        self.stats.requests += 1
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens

    def _cached(self, key: str) -> JudgeRequest | None:
        with session_scope(self.engine) as session:
            return session.execute(select(JudgeRequest).where(JudgeRequest.key == key, JudgeRequest.status == "ok")
                                   .limit(1)).scalars().first()

    def _record(self, key: str, item_id: int, order, status: str, *, reply=None, scores=None, error=None,
                attempts: int | None = None) -> None:
        """Every request is written at once, so a killed run never pays for a finished request twice."""
        with session_scope(self.engine) as session:
            session.add(JudgeRequest(
                key=key, rater_id=self.rater_id, item_id=item_id, model=self.endpoint.model, status=status,
                response=reply.text if reply else None, rationale=rationale_of(reply.text) if reply else None,
                scores=json.dumps(scores) if scores else None,
                order=json.dumps([d.id for d in order]), error=error,
                prompt_tokens=reply.prompt_tokens if reply else 0,
                completion_tokens=reply.completion_tokens if reply else 0,
                latency_ms=reply.latency_ms if reply else 0, attempts=reply.attempts if reply else (attempts or 0)))
