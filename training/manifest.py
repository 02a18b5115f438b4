"""What every training stage leaves beside its output: manifest.json (versions, config, data hash, device,
timings) and a loss plot."""

import json
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("rater", "torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


class Timer:
    def __enter__(self) -> "Timer":
        self.started = time.time()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.time() - self.started


def write_manifest(output: Path, *, stage: str, config: dict, data_sha256: str | None, device: str, timer: Timer,
                   extra: dict | None = None) -> Path:
    manifest = {"stage": stage, "config": config, "data_sha256": data_sha256, "device": device,
                "platform": platform.platform(), "packages": package_versions(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timer.started)),
                "seconds": round(timer.seconds, 2), **(extra or {})}
    path = output / "manifest.json"
    output.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def losses(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]


def write_loss_plot(log_history: list[dict], path: Path, title: str) -> Path | None:
    points = losses(log_history)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    axis.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=2)
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
