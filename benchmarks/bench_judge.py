"""LLM-judge throughput, measured from the server's side: a loopback chat-completions server in its own process
answers every request after 200 ms, so at --concurrency C it allows C / 0.2 requests a second. The server records
when each request arrives; the steady rate is the arrivals between the 10th and 90th percentile over that time.
Runs --concurrency 32 and 128 (one item per request) in one run and prints each rate beside the server's limit,
and requests lost or sent twice. Targets: >= 85 % of the limit at 32; >= 400 items/s at 128.
Run: .venv/bin/python benchmarks/bench_judge.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.2
RUNS = {32: int(os.environ.get("BENCH_ITEMS_32", 3000)), 128: int(os.environ.get("BENCH_ITEMS_128", 8000))}


def start_server(folder: Path, name: str) -> tuple[subprocess.Popen, str]:
    port_file = folder / f"url-{name}"
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"), str(DELAY), str(port_file)])
    while not port_file.exists() or not port_file.read_text():
        time.sleep(0.05)
    return process, port_file.read_text()


def steady_rate(arrivals: list[float]) -> float:
    arrivals = sorted(arrivals)
    low, high = int(0.1 * len(arrivals)), int(0.9 * len(arrivals))
    return (high - low) / (arrivals[high] - arrivals[low])


def judge_run(folder: Path, concurrency: int, items: int) -> dict:
    path = folder / f"items-{concurrency}.jsonl"
    path.write_text("".join(json.dumps({"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}",
                                        "distractors": [f"bra {n}", f"dålig {n}", f"x {n}", f"y {n}"]}) + "\n"
                            for n in range(items)))
    db = folder / f"bench-{concurrency}.db"
    rater = [sys.executable, "-m", "rater.cli", "--db", str(db)]
    subprocess.run([*rater, "import", str(path)], check=True, capture_output=True)
    server, url = start_server(folder, str(concurrency))
    try:
        started = time.perf_counter()
        subprocess.run([*rater, "judge", "--model", "judge-model", "--base-url", url, "--api-key-env", "BENCH_KEY",
                        "--concurrency", str(concurrency)], env=dict(os.environ, BENCH_KEY="test-key"), check=True,
                       capture_output=True)
        wall = time.perf_counter() - started
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as answer:
            stats = json.loads(answer.read())
    finally:
        server.terminate()
        server.wait()
    per_question = stats["per_question"]
    return {"wall": wall, "rate": steady_rate(stats["arrivals"]), "limit": concurrency / DELAY,
            "lost": items - len(per_question), "twice": sum(n - 1 for n in per_question.values())}


def main() -> None:
    print(f"rater judge benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}; the server answers after {DELAY * 1000:.0f} ms, in its own process")
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency, items in RUNS.items():
            r = judge_run(Path(tmp), concurrency, items)
            print(f"--concurrency {concurrency:>3}: {items:,} items in {r['wall']:.1f} s; steady {r['rate']:.1f} "
                  f"requests/s of the server's {r['limit']:.0f} ({r['rate'] / r['limit']:.0%}); "
                  f"lost {r['lost']}, sent twice {r['twice']}")


if __name__ == "__main__":
    main()
