"""The torch engine's resumable training state in the work folder (engine-specific: the engine is part of the
train step's content key, so the two engines never share a work folder):

  checkpoints/latest.json                     {"step": n, "folder": "step-0000000n"} — written last
  checkpoints/step-0000000n/state.json        step, seed, trainable names, metrics so far
  checkpoints/step-0000000n/tensors.safetensors   param.<name>, ema.<name> (float32, torch layout)
  checkpoints/step-0000000n/optimizer.pt      the optimiser's and the loss scaler's state_dict
A checkpoint folder is written under a temporary name and renamed; latest.json then points at it and older
checkpoints are removed, so a crash at any point leaves the previous checkpoint intact and pointed at.
Every draw is keyed by (seed, purpose, step, …), so the step counter is the whole random state.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .files import read_json, write_json

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
FORMAT = "sardine-torch-checkpoint"


@dataclass
class Restored:
    step: int
    history: list[dict[str, Any]]


def save(work_dir: Path, step: int, seed: int, trainables: list[Any], ema: dict[str, torch.Tensor] | None,
         optimizer_state: dict[str, Any], history: list[dict[str, Any]]) -> None:
    root = work_dir / CHECKPOINTS
    name = f"step-{step:08d}"
    temporary = root / f".{name}.{uuid.uuid4()}.partial"
    temporary.mkdir(parents=True)
    try:
        tensors = {f"param.{t.name}": t.parameter.detach().float().cpu().contiguous() for t in trainables}
        if ema is not None:
            tensors.update({f"ema.{n}": v.detach().float().cpu().contiguous() for n, v in ema.items()})
        save_file(tensors, str(temporary / "tensors.safetensors"), metadata={"format": FORMAT})
        torch.save(optimizer_state, temporary / "optimizer.pt")
        write_json(temporary / "state.json", {
            "format": FORMAT, "version": 1, "step": step, "seed": seed,
            "trainables": [t.name for t in trainables], "ema": ema is not None, "history": history,
        })
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    write_json(root / LATEST, {"step": step, "folder": name})
    for entry in root.iterdir():
        if entry.name not in (name, LATEST):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def restore(work_dir: Path, seed: int, trainables: list[Any], ema: dict[str, torch.Tensor] | None) -> tuple[Restored, dict[str, Any]] | None:
    """Loads the latest checkpoint into the trainables (and EMA); returns it and the optimiser state, or None."""
    root = work_dir / CHECKPOINTS
    if not (root / LATEST).exists():
        return None
    folder = root / read_json(root / LATEST)["folder"]
    state = read_json(folder / "state.json")
    if state.get("format") != FORMAT:
        raise ValueError(f"{folder / 'state.json'}: not a torch engine checkpoint")
    if state["seed"] != seed or state["trainables"] != [t.name for t in trainables] or state["ema"] != (ema is not None):
        raise ValueError(f"{folder / 'state.json'}: was written by another training declaration (its trainable tensors, seed or EMA differ)")
    tensors = load_file(str(folder / "tensors.safetensors"))
    with torch.no_grad():
        for t in trainables:
            value = tensors[f"param.{t.name}"]
            if tuple(value.shape) != tuple(t.parameter.shape):
                raise ValueError(f"{folder}: param.{t.name} has shape {list(value.shape)}, the model's {list(t.parameter.shape)}")
            t.parameter.copy_(value.to(t.parameter.dtype))
            if ema is not None:
                ema[t.name].copy_(tensors[f"ema.{t.name}"])
    optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    return Restored(state["step"], state["history"]), optimizer_state
