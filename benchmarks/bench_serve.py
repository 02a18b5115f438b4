"""The rating page at a school's scale: one `rater serve` process on PostgreSQL, many simulated teachers at human
pace, each a real HTTP client (its own cookie jar) that opens its link, reads the page, waits 2-10 s and posts its
answer as the page's form does (Origin and CSRF token included), then follows the redirect to the next item.

Prints the time from posting an answer to having the next item's page (p50, p95), pages that failed, ratings lost
or duplicated against what the teachers posted, items with more than K teachers, and the server's memory per open
teacher (resident memory with every teacher's page open, minus before any was, divided by the teachers).
Run: .venv/bin/python benchmarks/bench_serve.py [--teachers 200] [--items 4000] [--minutes 3] [--overlap 2]
PostgreSQL runs on a throwaway server started from the machine's server binaries (tests/pg_server.py).
"""

import argparse
import asyncio
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aiohttp  # noqa: E402
from bench_overlap import build  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from rater.store.access import add_teacher  # noqa: E402
from rater.store.engine import create_store_engine, session_scope  # noqa: E402
from rater.store.study import Study  # noqa: E402
from rater.store.tables import RaterRecord, Rating  # noqa: E402

SEQ = re.compile(r'data-seq="(\d+)"')
CSRF = re.compile(r'name="csrf" content="([0-9a-f]+)"')
TICKS = re.compile(r'name="tick" value="(\d+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Teacher:
    def __init__(self, name: str, link: str, base: str, pace: tuple[float, float], until: float) -> None:
        self.name, self.link, self.base, self.pace, self.until = name, link, base, pace, until
        self.waits: list[float] = []
        self.posted: list[tuple[int, ...]] = []
        self.failures: list[str] = []
        self.opened = asyncio.Event()

    async def run(self) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as http:
            async with http.get(self.link) as response:
                await response.text()
            async with http.get(self.base + "/rate") as response:
                page = await response.text()
            self.opened.set()
            while time.monotonic() < self.until:
                ticks = TICKS.findall(page)
                if not ticks:
                    return  # nothing left for this teacher
                seq, csrf = SEQ.search(page).group(1), CSRF.search(page).group(1)  # type: ignore[union-attr]
                await asyncio.sleep(random.uniform(*self.pace))
                form = [("csrf", csrf), ("seq", seq), ("action", "save"), ("seconds", "3")]
                form += [("tick", t) for t in ticks if random.random() < 0.4]
                began = time.perf_counter()
                try:
                    async with http.post(self.base + "/rate", data=form, headers={"Origin": self.base}) as response:
                        page = await response.text()
                        if response.status != 200 or "notice warning" in page:
                            self.failures.append(f"{response.status}")
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    self.failures.append(type(error).__name__)
                    return
                self.waits.append(time.perf_counter() - began)
                if os.environ.get("BENCH_SLOW") and self.waits[-1] > 1:
                    print(f"slow {self.name} {self.waits[-1]:.2f}s answer #{len(self.waits)} at "
                          f"{time.monotonic() - self.until:.0f}s", flush=True)
                self.posted.append(tuple(int(t) for t in ticks))


async def drive(teachers: list[Teacher], server_pid: int) -> int:
    before = rss_kb(server_pid)
    tasks = [asyncio.create_task(t.run()) for t in teachers]
    await asyncio.gather(*(t.opened.wait() for t in teachers))
    during = rss_kb(server_pid)
    await asyncio.gather(*tasks)
    return during - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teachers", type=int, default=200)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--pace", type=float, nargs=2, default=(2.0, 10.0), metavar=("MIN", "MAX"))
    args = parser.parse_args()
    from tests.pg_server import find_bin_dir, start_server

    print(f"rater serve benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    if find_bin_dir() is None:
        raise SystemExit("no PostgreSQL server binaries on this machine")
    pg = start_server(durable=True)
    server = None
    try:
        url = pg.create_database("bench_serve")
        build(url, args.items)
        engine = create_store_engine(url, upgrade=False)
        links = {}
        with session_scope(engine) as session:
            Study().set_overlap(session, args.overlap)
            port = free_port()
            for n in range(args.teachers):
                links[f"teacher{n:03d}"] = f"http://127.0.0.1:{port}/t/" + add_teacher(session, name=f"teacher{n:03d}")
        with engine.begin() as c:  # a study's database has planner statistics; a freshly loaded one not yet
            c.exec_driver_sql("ANALYZE")
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "rater.cli", "--db", url, "serve", "--port", str(port),
                                   "--requests-per-minute", "100000"], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "rater serve did not start"
                time.sleep(0.1)
        until = time.monotonic() + args.minutes * 60
        teachers = [Teacher(name, link, base, tuple(args.pace), until) for name, link in links.items()]  # type: ignore[arg-type]
        memory = asyncio.run(drive(teachers, server.pid))
        with engine.connect() as c:
            per_item = Counter(dict(c.execute(select(Rating.item_id, func.count(func.distinct(Rating.rater_id)))
                                              .group_by(Rating.item_id)).all()))
            stored = Counter(c.execute(select(RaterRecord.name, Rating.distractor_id).join(RaterRecord)).all())
        engine.dispose()
        waits = sorted(w for t in teachers for w in t.waits)
        posted = Counter((t.name, d) for t in teachers for ids in t.posted for d in ids)
        lost = sum(1 for key in posted if key not in stored)
        failures = Counter(f for t in teachers for f in t.failures)
        print(f"{args.teachers} teachers at {args.pace[0]:g}-{args.pace[1]:g} s per item for {args.minutes:g} min, "
              f"{args.items:,} items, overlap {args.overlap}, PostgreSQL (fsync on)")
        print(f"  items answered: {len(waits):,} ({len(waits) / (args.minutes * 60):.1f} per second)")
        print(f"  answer posted -> next item's page: p50 {statistics.median(waits) * 1000:.1f} ms, "
              f"p95 {waits[int(0.95 * len(waits)) - 1] * 1000:.1f} ms, max {waits[-1] * 1000:.0f} ms")
        print(f"  ratings stored {sum(stored.values()):,}; lost {lost}; duplicated {sum(n - 1 for n in stored.values())}"
              f"; items with more than {args.overlap} teachers: {sum(1 for n in per_item.values() if n > args.overlap)}")
        print(f"  failed or refused answers: {sum(failures.values())} {dict(failures) if failures else ''}")
        print(f"  server memory with every page open: {memory / 1024:.1f} MB more than before, "
              f"{memory / args.teachers:.0f} kB per teacher")
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=60)
        pg.stop()


if __name__ == "__main__":
    main()
