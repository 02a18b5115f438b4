"""Training and generation benchmark on the tiny offline Mistral model, on this machine's CPU.

1. Seconds per optimizer step and peak resident memory for each stage (sft, merge, dpo, kto), each stage in its
   own process so the peaks are separate.
2. Distractors per second of the hf generator with batch size 16 versus 1, measured in one run.
Run: .venv/bin/python benchmarks/bench_training.py
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

STAGE = r"""
import json, resource, sys, time
from pathlib import Path
from rater.store.engine import create_store_engine, database_url
from training import data, settings, trainers, merge
db, stage, model, out, extra = sys.argv[1:6]
engine = create_store_engine(database_url(db))
started = time.perf_counter()
if stage == "merge":
    merge.merge_adapter(Path(model), Path(extra), Path(out))
    steps, runtime = 0, time.perf_counter() - started
else:
    options = json.loads(extra)
    rows = {"sft": lambda: data.sft_from_store(engine, split="all"), "dpo": lambda: data.pref_from_store(engine, split="all"),
            "kto": lambda: data.kto_from_store(engine, split="all")}[stage]()
    run = {"sft": trainers.train_sft, "dpo": trainers.train_dpo, "kto": trainers.train_kto}[stage]
    run(Path(model), rows, Path(out), settings.resolve(stage, **options))
    history = json.loads((Path(out) / "manifest.json").read_text())["log_history"]
    steps = max(e["step"] for e in history)
    runtime = [e["train_runtime"] for e in history if "train_runtime" in e][0]
print(json.dumps({"steps": steps, "seconds": runtime, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHAIN_SFT = {"max_steps": 150, "learning_rate": 2e-2, "grad_accum": 1, "lora_r": 16, "quantize": False,
             "target_modules": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "save_steps": 10000}


def stage(db, name, model, out, extra) -> dict:
    result = subprocess.run([sys.executable, "-c", STAGE, str(db), name, str(model), str(out), extra],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_generation(model: Path, adapter: Path) -> None:
    import asyncio

    from rater.core.domain import ItemView
    from training.generate import HFGenerator

    rows = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "rater" / "demo" /
                                          "demo_set.jsonl").read_text().splitlines()]
    items = [ItemView(n, r["context"], r["question"], r["answer"], ()) for n, r in enumerate(rows * 3)]  # 36 items
    rates = {}
    for batch in (16, 1):
        generator = HFGenerator(model, adapter, seed=0, max_new_tokens=48)
        found, started = 0, time.perf_counter()
        for start in range(0, len(items), batch):
            found += sum(len(d) for d in asyncio.run(generator.generate(items[start:start + batch], 4)))
        seconds = time.perf_counter() - started
        rates[batch] = found / seconds
        print(f"hf generator, batch {batch:>2}: {found} distractors for {len(items)} items in {seconds:.1f} s = "
              f"{rates[batch]:.1f} distractors/s")
    print(f"batch 16 vs 1: {rates[16] / rates[1]:.1f}x")


def main() -> None:
    print(f"rater training benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, CPU only; tiny Mistral (2 layers, hidden 32), demo set")
    from training.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = tmp / "bench.db"
        for args in (["demo"], ["judge", "--rater", "rules"]):
            subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(db), *args], check=True, capture_output=True)
        model = build_tiny_model(tmp / "tiny")
        plan = [("sft (QLoRA 4-bit, q/v)", "sft", model, tmp / "sft4", json.dumps({"max_steps": 20})),
                ("sft (full precision, all projections)", "sft", model, tmp / "sft", json.dumps(CHAIN_SFT)),
                ("merge (careful)", "merge", model, tmp / "merged", str(tmp / "sft")),
                ("dpo (QLoRA 4-bit)", "dpo", tmp / "merged", tmp / "dpo", json.dumps({"max_steps": 20, "grad_accum": 1})),
                ("kto (QLoRA 4-bit)", "kto", tmp / "merged", tmp / "kto", json.dumps({"max_steps": 20, "grad_accum": 1}))]
        for label, name, base, out, extra in plan:
            figures = stage(db, name, base, out, extra)
            per_step = f"{figures['seconds'] / figures['steps']:.3f} s/step over {figures['steps']} steps" \
                if figures["steps"] else f"{figures['seconds']:.2f} s"
            print(f"{label}: {per_step}, peak RSS {figures['peak_mb']:.0f} MB")
        bench_generation(model, tmp / "sft")


if __name__ == "__main__":
    main()
