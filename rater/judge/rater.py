"""The LLM judge as a Rater: one request per item (per order), cached by request key, scores to acceptances.

Store work never runs on the event loop: the keys of answered requests are loaded once in a thread, and every
request is recorded through the run's writer thread as soon as its answer (or failure) is in."""

import asyncio
import itertools
import json
import math
import random
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import Engine, select
from sqlmodel import col

from rater.core.domain import DistractorView, ItemView, Judgement, RaterKind
from rater.core.errors import RaterError
from rater.judge.prompt import STRUCTURED_SCHEMA, prompt_sha256, render_prompt, request_key
from rater.judge.scoring import Acceptance, ParseFailure, parse_scores, rationale_of
from rater.llm.client import ChatClient, Endpoint, Reply, RequestFailed
from rater.raters.base import Rater, RunStart
from rater.store.engine import session_scope
from rater.store.tables import JudgeRequest, utcnow

REASK = ("Your answer did not end with a usable score list ({problem}). Give exactly {n} scores between 1 and 5, "
         "in the order of the distractors, as a JSON list between dollar signs, for example $[{example}]$.")
REASK_TAIL_CHARS = 600  # a re-ask repeats only the end of the failed answer, so prompts never snowball


@dataclass
class JudgeStats:
    requests: int = 0
    cached: int = 0
    parse_failures: int = 0
    unrecorded: int = 0  # request records the store refused (the ratings are unaffected)
    failed_items: int = 0
    auto_items: int = 0  # items asked with --orders auto
    third_orders: int = 0  # of those, items whose two first orders disagreed, so a third was asked
    auto_orders: int = 0  # orders those items were asked in
    fixed_orders: int = 0  # orders 3 fixed orders would have taken (fewer for items with fewer orderings)
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
    auto_orders: bool = False  # two orders, and a third only where their decisions differ
    repeats: int = 1  # each request asked this many times (the cache never answers a repeat)


def orderings(item: ItemView, orders: int) -> list[tuple[DistractorView, ...]]:
    """The stored order first, then up to `orders - 1` other distinct orders, seeded by the item so reruns send
    identical requests; never more orders than the distractors have."""
    wanted = min(orders, math.factorial(len(item.distractors)))
    found = [item.distractors]
    rng = random.Random(item.id)
    if wanted > 1 and len(item.distractors) <= 6:  # few enough to list: draw from every other permutation
        others = list(itertools.permutations(item.distractors))[1:]
        return found + rng.sample(others, wanted - 1)
    while len(found) < wanted:
        shuffled = list(item.distractors)
        rng.shuffle(shuffled)
        if tuple(shuffled) not in found:
            found.append(tuple(shuffled))
    return found


@dataclass(frozen=True)
class Cached:
    """A usable answer given before, to exactly the same request (its tokens: what the answer took)."""

    scores: list[float]
    rationale: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def reask_messages(messages: list[dict], answer: str, problem: ParseFailure, n: int) -> list[dict]:
    """The first request again, then the tail of the failed answer and the re-ask (earlier re-asks dropped)."""
    tail = answer if len(answer) <= REASK_TAIL_CHARS else "…" + answer[-REASK_TAIL_CHARS:]
    return messages[:1] + [{"role": "assistant", "content": tail},
                           {"role": "user", "content": REASK.format(problem=problem, n=n,
                                                                    example=",".join(["3"] * n))}]


class LLMJudge(Rater):
    kind: ClassVar[str] = RaterKind.llm
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
        self.run: RunStart | None = None
        self.answered: set[str] | None = None  # keys of requests answered with usable scores, loaded once
        self.loading = asyncio.Lock()
        self.fresh: dict[str, Cached] = {}  # answers of this run, before their rows are committed

    def started(self, run: RunStart) -> None:
        self.run = run

    async def finished(self) -> None:
        await self.client.close()

    def settings(self) -> dict:
        return {"model": self.endpoint.model, "base_url": self.endpoint.base_url,
                "orders": "auto" if self.config.auto_orders else self.config.orders, "repeats": self.config.repeats,
                "price_in": self.stats.price_in, "price_out": self.stats.price_out,
                "with_context": self.config.with_context, "structured": self.endpoint.structured,
                "max_tokens": self.endpoint.max_tokens, "acceptance": self.config.acceptance.as_dict(),
                "prompt_sha256": prompt_sha256(self.config.template, with_context=self.config.with_context,
                                               structured=self.endpoint.structured)}

    async def rate(self, item: ItemView) -> list[Judgement]:
        if self.config.auto_orders:
            possible = orderings(item, 3)
            results = await self._ask(item, possible[:2])
            self.stats.auto_orders += len(possible[:2])
            if len(possible) > 2 and self._orders_disagree(results):
                self.stats.third_orders += 1
                self.stats.auto_orders += 1
                results += await self._ask(item, possible[2:])
            self.stats.auto_items += 1
            self.stats.fixed_orders += len(possible)
        else:
            results = await self._ask(item, orderings(item, self.config.orders))
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.stats.failed_items += 1
            if not all(isinstance(f, (RequestFailed, ParseFailure)) for f in failures):
                raise failures[0]
            raise RequestFailed(f"no usable scores: {failures[0]}", 0)
        answers = [r for r in results if not isinstance(r, BaseException)]
        totals: dict[int, list[float]] = {}
        for scores, _ in answers:
            for distractor_id, score in scores.items():
                totals.setdefault(distractor_id, []).append(score)
        mean = {d: sum(s) / len(s) for d, s in totals.items()}
        limit = self.config.acceptance.limit(list(mean.values()))
        rationale = answers[0][1]
        return [Judgement(d.id, mean[d.id] > limit, score=mean[d.id], limit=limit, rationale=rationale)
                for d in item.distractors]

    async def _ask(self, item: ItemView, orders: list[tuple[DistractorView, ...]]) -> list:
        """Every order asked (each `repeats` times, the repeats past the cache), answers or exceptions."""
        return list(await asyncio.gather(*(self._score(item, order, repeat) for order in orders
                                           for repeat in range(self.config.repeats)), return_exceptions=True))

    def _orders_disagree(self, results: list) -> bool:
        """Whether the orders' first answers (not their repeats) give any distractor different decisions."""
        seen: dict[int, bool] = {}
        for result in results[::self.config.repeats]:
            if isinstance(result, BaseException):
                return False  # the item fails anyway
            scores = result[0]
            limit = self.config.acceptance.limit(list(scores.values()))
            for distractor_id, score in scores.items():
                if seen.setdefault(distractor_id, score > limit) != (score > limit):
                    return True
        return False

    def _messages(self, item: ItemView, order: tuple[DistractorView, ...]) -> list[dict]:
        prompt = render_prompt(self.config.template, question=item.question, answer=item.answer,
                               distractors=[d.text for d in order],
                               context=item.context if self.config.with_context else None,
                               structured=self.endpoint.structured)
        return [{"role": "user", "content": prompt}]

    def _key(self, messages: list[dict]) -> str:
        """The cache key: the server (base URL), the model, the messages and every parameter that shapes the
        answer, so two servers serving the same model name never share answers."""
        params = {"temperature": self.endpoint.temperature, "structured": self.endpoint.structured,
                  "max_tokens": self.endpoint.max_tokens, "base_url": self.endpoint.base_url or "openai"}
        return request_key(self.endpoint.model, messages, params)

    async def _score(self, item: ItemView, order: tuple[DistractorView, ...],
                     repeat: int = 0) -> tuple[dict[int, float], str]:
        messages = self._messages(item, order)
        key = self._key(messages)
        cached = None if repeat else self.fresh.get(key) or await self._cached(key)  # a repeat is asked anew
        if cached is not None:
            self.stats.cached += 1
            # recorded under this judge too (status "cached"), so its consistency and cost count the answer it used
            self._record(key, item.id, order, "cached", scores=cached.scores, rationale=cached.rationale,
                         tokens=(cached.prompt_tokens, cached.completion_tokens))
            return dict(zip([d.id for d in order], cached.scores)), cached.rationale or ""
        fmt = {"type": "json_schema", "json_schema": STRUCTURED_SCHEMA} if self.endpoint.structured else None
        asking = messages
        for asked in range(self.config.reasks + 1):
            try:
                async with self.in_flight:
                    reply = await self.client.complete(asking, fmt)
            except RequestFailed as failure:
                self._record(key, item.id, order, "failed", error=failure.message, attempts=failure.attempts)
                raise
            self._count(reply)
            try:
                scores = parse_scores(reply.text, len(order))
            except ParseFailure as problem:
                self.stats.parse_failures += 1
                self._record(key, item.id, order, "parse_error", reply=reply, error=str(problem))
                if asked == self.config.reasks:
                    raise
                asking = reask_messages(messages, reply.text, problem, len(order))
                continue
            self._record(key, item.id, order, "ok", reply=reply, scores=scores)
            self.fresh.setdefault(key, Cached(scores, rationale_of(reply.text), reply.prompt_tokens,
                                              reply.completion_tokens))
            return dict(zip([d.id for d in order], scores)), rationale_of(reply.text)
        raise AssertionError("unreachable")

    def _count(self, reply: Reply) -> None:
        self.stats.requests += 1
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens

    async def _cached(self, key: str) -> "Cached | None":
        """An earlier usable answer to exactly this request: the set of answered keys is loaded once (in a thread);
        only a hit reads its row."""
        async with self.loading:
            if self.answered is None:
                self.answered = await asyncio.to_thread(self._answered_keys)
        if key not in self.answered:
            return None
        return await asyncio.to_thread(self._answer_of, key)

    def _answered_keys(self) -> set[str]:
        with session_scope(self.engine) as session:
            return set(session.execute(select(col(JudgeRequest.key)).where(
                col(JudgeRequest.model) == self.endpoint.model, col(JudgeRequest.status) == "ok")).scalars())

    def _answer_of(self, key: str) -> "Cached | None":
        with session_scope(self.engine) as session:
            row = session.execute(select(col(JudgeRequest.scores), col(JudgeRequest.rationale),
                                         col(JudgeRequest.prompt_tokens), col(JudgeRequest.completion_tokens)).where(
                col(JudgeRequest.key) == key, col(JudgeRequest.status) == "ok").limit(1)).first()
        return Cached(json.loads(row.scores), row.rationale, row.prompt_tokens, row.completion_tokens) if row else None

    def _record(self, key: str, item_id: int, order, status: str, *, reply: Reply | None = None, scores=None,
                error: str | None = None, attempts: int | None = None, rationale: str | None = None,
                tokens: tuple[int, int] = (0, 0)) -> None:
        """Every request is queued for the writer thread as soon as it is answered, so a killed run never pays for
        a finished request twice (only the ones still in flight, or in the writer's queue, are sent again)."""
        run = self.run
        if run is None or run.records is None:
            raise RaterError("The LLM judge rates only inside a run, which gives it a place for its records.",
                             "this is a bug in rater")
        row = dict(
            key=key, rater_id=run.rater_id, item_id=item_id, model=self.endpoint.model, status=status,
            response=reply.text if reply else None, rationale=rationale_of(reply.text) if reply else rationale,
            scores=json.dumps(scores) if scores else None, order=json.dumps([d.id for d in order]), error=error,
            prompt_tokens=reply.prompt_tokens if reply else tokens[0],
            completion_tokens=reply.completion_tokens if reply else tokens[1],
            latency_ms=reply.latency_ms if reply else 0, attempts=reply.attempts if reply else (attempts or 0),
            created_at=utcnow())
        run.records.judge_request(row).add_done_callback(self._recorded)

    def _recorded(self, write: asyncio.Future) -> None:
        if not write.cancelled() and write.exception() is not None:
            self.stats.unrecorded += 1
