"""Load every rater export through LLaMA-Factory's own data loader and print its row counts beside ours.

Not part of `make test`: LLaMA-Factory 0.9.5 brings its own torch (2.9.1 with torchvision and torchaudio, about
8 GB), so it lives in a venv of its own (`--lf-venv`, created on first run). Run from the project's venv:

    .venv/bin/python scripts/check_llamafactory.py [--shared ../shared/data] [--work /tmp/lf-check]

Steps: import SweQUAD-MC and the published preference sample (its pairs become ratings), add 4 baseline
distractors per item, rate everything with the rules rater, write each
export (`dataset_info.json` beside them), then call LLaMA-Factory's `get_dataset` with the stage its own SFT, DPO
and KTO workflows use (sft, rm, kto) on a tiny offline tokenizer, and compare the counts. The published `alpaca`
preference form gets the legacy `ranking: true` entry a user would write for it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLAMAFACTORY = "llamafactory==0.9.5"
LF_TORCH = ["torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1"]  # the torch its requirements accept

EXPORTS = [  # (file stem, rater export arguments, LLaMA-Factory stage)
    ("sft_alpaca", ["sft", "--split", "train", "--format", "alpaca"], "sft"),
    ("sft_llamafactory", ["sft", "--split", "train", "--format", "llamafactory"], "sft"),
    ("pref_alpaca", ["pref", "--split", "all", "--pairs", "disjoint", "--format", "alpaca"], "rm"),
    ("pref_llamafactory", ["pref", "--split", "all", "--pairs", "disjoint", "--format", "llamafactory"], "rm"),
    ("pref_all_llamafactory", ["pref", "--split", "all", "--pairs", "all", "--format", "llamafactory"], "rm"),
    ("kto_llamafactory", ["kto", "--split", "all", "--format", "llamafactory"], "kto"),
]

LOADER = r'''
import json, sys
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer
tokenizer_path, folder, out, names = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
counts = {}
for name, stage in names:
    train_stage = {"sft": "sft", "rm": "dpo", "kto": "kto"}[stage]
    try:
        model_args, data_args, training_args, _, _ = get_train_args(dict(
            model_name_or_path=tokenizer_path, stage=train_stage, do_train=True, finetuning_type="lora",
            dataset=name, dataset_dir=folder, template="mistral", cutoff_len=4096, output_dir=out,
            overwrite_cache=True, report_to="none", overwrite_output_dir=True))
        module = load_tokenizer(model_args)
        template = get_template_and_fix_tokenizer(module["tokenizer"], data_args)
        dataset = get_dataset(template, model_args, data_args, training_args, stage=stage, **module)
        counts[name] = len(dataset["train_dataset"])
    except Exception as error:
        counts[name] = f"{type(error).__name__}: {error}"[:200]
print("COUNTS " + json.dumps(counts))
'''


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def ensure_llamafactory(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import llamafactory"], capture_output=True).returncode == 0:
        return python
    print(f"installing {LLAMAFACTORY} into {venv} (about 8 GB, a few minutes)", flush=True)
    run([sys.executable, "-m", "venv", venv])
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "-q", *LF_TORCH])
    run([python, "-m", "pip", "install", "-q", LLAMAFACTORY])
    return python


def rater(db: Path, *args) -> str:
    return run([sys.executable, "-m", "rater.cli", "--db", db, *args], capture_output=True, text=True).stdout


def build_exports(shared: Path, work: Path) -> dict[str, int]:
    db = work / "rater.db"
    rater(db, "import", *(shared / "swequad-mc" / f"{n}.json" for n in ("training", "dev", "test")),
          shared / "published-thesis-samples" / "pref_sample.json")
    rater(db, "generate", "--generator", "baseline", "--source", "baseline", "--split", "all", "--limit", "100000")
    rater(db, "judge", "--rater", "rules")
    ours = {}
    for stem, args, _ in EXPORTS:
        path = work / "data" / f"{stem}.json"
        output = rater(db, "export", *args, "-o", path)
        ours[stem] = len(json.loads(path.read_text()))
        print(f"rater export {' '.join(args)}: {' '.join(output.split())}")
    info_path = work / "data" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    for stem, args, _ in EXPORTS:
        if "alpaca" in args:  # the entries a user registers for the published forms by hand
            pairwise = args[0] == "pref"
            info[stem] = {"file_name": f"{stem}.json", **({"ranking": True} if pairwise else {}),
                          "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    info_path.write_text(json.dumps(info, indent=2))
    return ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RATER_SHARED_DATA", ROOT.parent / "shared"
                                                                           / "data")))
    parser.add_argument("--lf-venv", type=Path, default=ROOT / ".venv-llamafactory")
    parser.add_argument("--work", type=Path, default=None)
    options = parser.parse_args()
    work = options.work or Path(tempfile.mkdtemp(prefix="lf-check-"))
    (work / "data").mkdir(parents=True, exist_ok=True)
    python = ensure_llamafactory(options.lf_venv)
    version = run([python, "-c", "import llamafactory, transformers, datasets; print(llamafactory.__version__, "
                                 "transformers.__version__, datasets.__version__)"], capture_output=True, text=True)
    ours = build_exports(options.shared, work)
    from training.tiny import build_tiny_model  # a tokenizer with a chat template, built offline
    tokenizer = build_tiny_model(work / "tiny")
    loaded = run([python, "-c", LOADER, tokenizer, work / "data", work / "out",
                  json.dumps([(stem, stage) for stem, _, stage in EXPORTS])],
                 capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                      "DISABLE_VERSION_CHECK": "1"})
    counts = json.loads(next(line for line in loaded.stdout.splitlines() if line.startswith("COUNTS "))[7:])
    lf, tf, ds = version.stdout.split()
    print(f"\nLLaMA-Factory {lf} (transformers {tf}, datasets {ds}), get_dataset per export:")
    print(f"{'export':<24}{'rater rows':>12}  LLaMA-Factory rows")
    for stem, _, stage in EXPORTS:
        print(f"{stem:<24}{ours[stem]:>12}  {counts[stem]}  (stage {stage})")


if __name__ == "__main__":
    main()
