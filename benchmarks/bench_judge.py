"""LLM-judge throughput: 1,000 items against a loopback chat-completions server that answers after 200 ms,
with --concurrency 32 and --concurrency 1, measured in one run. Prints wall times, the speed-up, and lost or
duplicated requests (the server counts requests per prompt). Run: .venv/bin/python benchmarks/bench_judge.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fake_openai import FakeOpenAI  # noqa: E402

ITEMS = int(os.environ.get("BENCH_ITEMS", 1000))


def run(db: Path, server: FakeOpenAI, concurrency: int, rater: str) -> float:
    env = dict(os.environ, BENCH_KEY="test-key")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(db), "judge", "--model", "judge-model",
                    "--base-url", server.url, "--api-key-env", "BENCH_KEY", "--concurrency", str(concurrency),
                    "--as", rater], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    print(f"rater judge benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}; {ITEMS} items, server answers after 200 ms")
    with tempfile.TemporaryDirectory() as tmp:
        items = Path(tmp) / "items.jsonl"
        items.write_text("".join(json.dumps({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}",
                                             "distractors": [f"bra {n}", f"dålig {n}", f"x {n}", f"y {n}"]}) + "\n"
                                 for n in range(ITEMS)))
        results = {}
        for concurrency in (32, 1):
            # a database each: the request cache would otherwise answer the second run without any request
            db = Path(tmp) / f"bench-{concurrency}.db"
            subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(db), "import", str(items)], check=True,
                           capture_output=True)
            server = FakeOpenAI(delay=0.2).start()
            try:
                seconds = run(db, server, concurrency, f"judge-c{concurrency}")
            finally:
                server.stop()
            lost = ITEMS - len(server.per_question)
            duplicated = sum(n - 1 for n in server.per_question.values())
            results[concurrency] = seconds
            print(f"--concurrency {concurrency:>2}: {seconds:7.1f} s, {ITEMS / seconds:6.1f} items/s, "
                  f"{server.requests} requests, lost {lost}, duplicated {duplicated}")
        print(f"speed-up 32 vs 1: {results[1] / results[32]:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
