"""The GPU bench (issue 18, issue 16's ratios): the paper's hybrid on a full-size SDXL with seeded weights, at
1024 × 1024 (128 × 128 latents), bf16 mixed precision, batch 1 and 4, gradient checkpointing off and on —
sardine's torch worker (sardine_side.py) against a bare diffusers + PEFT loop (peer.py), each configuration and
side in its own process. Python only (no Node): the training settings, adaptation and memory-plan estimates
come from configuration.json (configuration.ts writes it from the declarations).

  python bench/gpu/bench.py --out DIR [--tiny] [--budget S] [--warm-up N] [--steps N] [--peak-tflops T]

Writes DIR/bench-gpu.json and DIR/bench-gpu.md (each under a temporary name, then renamed); progress on stderr.
--tiny: the same on the tiny SDXL fixture's configs, 32 × 32 images, on the CPU. The time budget (default
450 s, ≤ 8 minutes with Python's start) ends a configuration that overruns it and skips the rest ("time");
one that runs out of device memory is recorded as "OOM".
Exit status: 0 when every configuration ran, ran out of memory or was skipped for time; 1 when one failed.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from peaks import bf16_peak

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER = REPO / "adapters" / "torch" / "worker"
# The GPU runs the configurations most likely to fit first; batch 4 without checkpointing (planned ≈ 68 GiB) last.
ORDER = ((1, False), (1, True), (4, True), (4, False))
WEIGHTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
# A side is not started with less time than this left.
LEAST_SECONDS = 20
SAMPLES = 8


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for bench-gpu.json and bench-gpu.md")
    parser.add_argument("--tiny", action="store_true", help="the tiny SDXL fixture, 32 × 32 images, on the CPU")
    parser.add_argument("--work", help="folder for the pipeline, data and caches, kept and reused by the next run "
                        "(default: a temporary folder, removed)")
    parser.add_argument("--budget", type=float, help="seconds for the whole bench (default 450; --tiny: 1200)")
    parser.add_argument("--warm-up", type=int, default=2, help="steps before the measured ones (≥ 2; the last is the FLOP-counted step)")
    parser.add_argument("--steps", type=int, help="measured steps per configuration and side (default 5; --tiny: 2)")
    parser.add_argument("--only", action="append", metavar="BATCH:on|off",
                        help="run only this configuration (batch size, gradient checkpointing); repeatable. Default: all four")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, instead of peaks.py's table")
    return parser.parse_args()


def chosen(only: list[str] | None) -> list[tuple[int, bool]]:
    """The configurations --only names (in the bench's order), or all of them."""
    if not only:
        return list(ORDER)
    named = set()
    for text in only:
        batch, _, checkpointing = text.partition(":")
        key = (int(batch), checkpointing == "on") if batch.isdigit() and checkpointing in ("on", "off") else None
        if key not in ORDER:
            known = ", ".join(f"{b}:{'on' if c else 'off'}" for b, c in ORDER)
            raise SystemExit(f"--only {text}: expected one of {known}")
        named.add(key)
    return [key for key in ORDER if key in named]


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvidia_smi() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "nvidia-smi did not answer within 60 s"
    return done.stdout if done.returncode == 0 else f"nvidia-smi exited {done.returncode}: {done.stderr.strip()}"


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def configs_only(source: Path, target: Path) -> None:
    """An architecture folder from a pipeline folder: its configs and tokenizers, not its weights."""
    shutil.copytree(source, target, ignore=lambda _d, names: [n for n in names if n.endswith(WEIGHTS)])


class Side:
    """One side's process: its output echoed to stderr (progress) and its last lines kept (for a failure)."""

    def __init__(self, work: Path, environment: dict[str, str], deadline: float) -> None:
        self.work = work
        self.environment = environment
        self.deadline = deadline
        self.count = 0

    def run(self, label: str, command: list[str], spec: dict[str, Any]) -> dict[str, Any]:
        left = self.deadline - time.monotonic()
        if left < LEAST_SECONDS:
            return {"status": "time", "message": f"not started: {left:.0f} s of the budget left"}
        self.count += 1
        spec_file, result_file = self.work / f"spec-{self.count}.json", self.work / f"result-{self.count}.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        print(f"{label}: started ({left:.0f} s of the budget left)", file=sys.stderr, flush=True)
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, *command, str(spec_file), str(result_file)], cwd=HERE, env=self.environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        tail: collections.deque[str] = collections.deque(maxlen=40)

        def echo() -> None:
            for line in process.stdout:
                tail.append(line.rstrip())
                print(f"  | {line.rstrip()}", file=sys.stderr, flush=True)

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=max(1.0, left))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            reader.join(timeout=5)
            return {"status": "time", "message": f"stopped at the time budget after {time.monotonic() - started:.0f} s"}
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        reader.join(timeout=5)
        seconds = round(time.monotonic() - started, 1)
        print(f"{label}: exited {code} after {seconds} s", file=sys.stderr, flush=True)
        if code == 0 and result_file.exists():
            return {**json.loads(result_file.read_text(encoding="utf-8")), "processSeconds": seconds}
        return {"status": "error", "message": f"exited {code}", "output": list(tail), "processSeconds": seconds}


def summarise(side: dict[str, Any], batch: int, per_image_model_flops: float | None, peak: float | None) -> dict[str, Any]:
    if side.get("status") != "ok":
        return side
    median = statistics.median(side["secondsPerStep"])
    model_flops = None if per_image_model_flops is None else per_image_model_flops * batch
    return {
        **side,
        "medianSecondsPerStep": median,
        "imagesPerSecond": batch / median,
        "modelFlops": model_flops,
        "mfu": None if peak is None or model_flops is None else model_flops / (median * peak),
        "hfu": None if peak is None or side["flops"] is None else side["flops"] / (median * peak),
    }


def gib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**30:.3g}"


def cell(side: dict[str, Any], key: str, form: str) -> str:
    if side.get("status") != "ok":
        return side.get("status", "?").upper() if side.get("status") in ("time", "error") else side.get("status", "?")
    value = side.get(key)
    if value is None:
        return "–"
    return format(100 * value, form[:-1]) + "%" if form.endswith("%") else format(value, form)


def markdown(result: dict[str, Any]) -> str:
    environment = result["environment"]
    peak = "–" if result["peakFlops"] is None else f"{result['peakFlops'] / 1e12:.1f} TFLOP/s"
    lines = [
        f"# sardine GPU bench: the paper's hybrid on {result['model']}",
        "",
        f"Device: {environment['device']} ({environment['deviceKind']}); torch {environment['versions']['torch']} "
        f"(CUDA {environment['cuda']}), diffusers {environment['versions']['diffusers']}, transformers {environment['versions']['transformers']}, "
        f"peft {environment['versions']['peft']}, accelerate {environment['versions']['accelerate']}, Python {environment['python']}.",
        f"{result['resolution']} × {result['resolution']} images ({result['latentSide']} × {result['latentSide']} latents), bf16 mixed precision, "
        f"AdamW; {result['warmUp']} warm-up steps (the last one FLOP-counted), median of {result['steps']} measured steps. "
        f"Load average {' '.join(map(str, result['loadBefore']))} before, {' '.join(map(str, result['loadAfter']))} after; "
        f"{result['seconds']:.0f} s in all (budget {result['budget']:.0f} s).",
        f"Peak bf16: {peak} ({result['peakSource']}).",
        "",
        "| configuration | sardine s/step | peer s/step | sardine / peer | images/s | peak GiB (sardine) | peak GiB (peer) | planned GiB "
        "| TFLOP/step | MFU | HFU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["configurations"]:
        sardine, peer = row["sardine"], row["peer"]
        ratio = "–" if row["ratio"] is None else f"{row['ratio']:.3f}"
        sardine_peak = gib(sardine.get("peakBytes")) if sardine.get("status") in ("ok", "OOM") else "–"
        peer_peak = gib(peer.get("peakBytes")) if peer.get("status") in ("ok", "OOM") else "–"
        flops = "–" if sardine.get("flops") is None else f"{sardine['flops'] / 1e12:.3g}"
        lines.append(
            f"| {row['name']} | {cell(sardine, 'medianSecondsPerStep', '.3f')} | {cell(peer, 'medianSecondsPerStep', '.3f')} | {ratio} "
            f"| {cell(sardine, 'imagesPerSecond', '.2f')} | {sardine_peak} | {peer_peak} | {gib(row['plannedBytes'])} | {flops} "
            f"| {cell(sardine, 'mfu', '.3g%')} | {cell(sardine, 'hfu', '.3g%')} |"
        )
    lines += [
        "",
        "sardine: the torch worker's train operation (adapters/torch/worker/sardine_torch/training.py); peer: bench/gpu/peer.py "
        "(diffusers + PEFT, as diffusers' example scripts). Peak: " + result["memory"] + ". Planned: `sardine plan --resources` "
        "(framework/plan/memory-plan.ts) for the same step, without the CUDA context. TFLOP/step: FlopCounterMode on one real step "
        "of sardine's (with checkpointing: the recomputed forward included). MFU: the model's FLOPs (the step without "
        "recomputation, from the checkpointing-off count per image) per second over the peak; HFU: the counted FLOPs.",
    ]
    failures = [(row["name"], side, row[side]) for row in result["configurations"] for side in ("sardine", "peer") if row[side].get("status") == "error"]
    for name, side, value in failures:
        lines += ["", f"{name}, {side}: {value['message']}", "", "```", *value.get("output", [])[-15:], "```"]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def main() -> int:
    args = arguments()
    mode = "tiny" if args.tiny else "sdxl"
    budget = args.budget if args.budget is not None else (1200.0 if args.tiny else 450.0)
    steps = args.steps if args.steps is not None else (2 if args.tiny else 5)
    if args.warm_up < 2 or steps < 1:
        raise SystemExit("--warm-up must be at least 2 and --steps at least 1")
    started = time.monotonic()
    load_before = loadavg()
    configuration = json.loads((HERE / "configuration.json").read_text(encoding="utf-8"))
    model = configuration["modes"][mode]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sardine-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(WORKER), str(HERE), os.environ.get("PYTHONPATH")) if p),
                   "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    if args.tiny:
        environment["SARDINE_TORCH_DEVICE"] = "cpu"
    sides = Side(work, environment, started + budget)
    try:
        architecture, built_from = work / "architecture", work / "architecture-source.txt"
        if built_from.exists() and built_from.read_text(encoding="utf-8") != model["architecture"]:
            raise SystemExit(f"--work {work}: holds a pipeline built from {built_from.read_text(encoding='utf-8')}, "
                             f"not {model['architecture']}; name another folder")
        if not architecture.exists():
            configs_only(REPO / model["architecture"], architecture)
            built_from.write_text(model["architecture"], encoding="utf-8")
        print(f"building {model['architecture']} with seeded weights and its latent cache in {work}", file=sys.stderr, flush=True)
        prepared = sides.run("prepare", ["sardine_side.py", "prepare"], {
            "work": str(work), "architecture": str(architecture), "seed": 0, "samples": SAMPLES, "resolution": model["resolution"]})
        if prepared.get("status") != "ok":
            print(json.dumps(prepared, indent=1), file=sys.stderr)
            return 1
        latent_side = prepared["latentShape"][0]
        rows = []
        by_key = {(c["batchSize"], c["gradientCheckpointing"]): c for c in model["configurations"]}
        for key in chosen(args.only):
            declared = by_key[key]
            common = {"adaptation": configuration["adaptation"], "train": declared["train"], "warmUp": args.warm_up, "steps": steps}
            label = f"{declared['name']}"
            sardine = sides.run(f"{label}, sardine", ["sardine_side.py", "train"], {**common, "work": str(work), "runDir": str(work / "runs" / str(len(rows)))})
            peer = sides.run(f"{label}, peer", ["peer.py"], {**common, "base": str(work / "base"), "latentSide": latent_side, "resolution": model["resolution"]})
            rows.append({"name": declared["name"], "batchSize": key[0], "gradientCheckpointing": key[1], "plannedBytes": declared["plannedBytes"],
                         "plannedTerms": declared["plannedTerms"], "sardine": sardine, "peer": peer})
        measured_off = [r for r in rows if not r["gradientCheckpointing"] and r["sardine"].get("status") == "ok" and r["sardine"]["flops"] is not None]
        per_image = measured_off[0]["sardine"]["flops"] / measured_off[0]["batchSize"] if measured_off else None
        peak, peak_source = bf16_peak(prepared["deviceName"], args.peak_tflops)
        for row in rows:
            row["sardine"] = summarise(row["sardine"], row["batchSize"], per_image, peak)
            row["peer"] = summarise(row["peer"], row["batchSize"], per_image, peak)
            both = row["sardine"].get("status") == "ok" and row["peer"].get("status") == "ok"
            row["ratio"] = row["sardine"]["medianSecondsPerStep"] / row["peer"]["medianSecondsPerStep"] if both else None
        result = {
            "model": model["architecture"],
            "experiment": configuration["experiment"],
            "resolution": model["resolution"],
            "latentSide": latent_side,
            "warmUp": args.warm_up,
            "steps": steps,
            "budget": budget,
            "peakFlops": peak,
            "peakSource": peak_source,
            "perImageModelFlops": per_image,
            "memory": "torch.cuda.max_memory_allocated over the run" if prepared["deviceKind"] == "cuda" else "the process's peak resident set",
            "environment": {
                "device": prepared["deviceName"] or "CPU",
                "deviceKind": prepared["deviceKind"],
                "cuda": prepared["cuda"],
                "python": sys.version.split()[0],
                "versions": {p: version(p) for p in ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "numpy")},
                "nvidiaSmi": nvidia_smi(),
            },
            "configurations": rows,
            "loadBefore": load_before,
            "loadAfter": loadavg(),
            "seconds": time.monotonic() - started,
        }
        write_atomically(out / "bench-gpu.json", json.dumps(result, indent=1, allow_nan=False) + "\n")
        table = markdown(result)
        write_atomically(out / "bench-gpu.md", table)
        print(table)
        failed = any(row[side].get("status") == "error" for row in rows for side in ("sardine", "peer"))
        return 1 if failed else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
