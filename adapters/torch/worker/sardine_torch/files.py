"""The files both engines read and write (the TypeScript side is the reference for each format):

  prepared data   framework/steps/prepared-dataset.ts: index.json + pixels/<n>.f32 (HWC float32 in [-1, 1])
  tensor shards   adapters/tfjs/training/sharded-tensors.ts: <prefix>-00000.safetensors, tensors "0", "1", …,
                  a shard closing at 64 MiB; each shard written under a temporary name, then renamed
Every file that could be mistaken for finished is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

SHARD_BYTES = 64 << 20


def temporary_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{uuid.uuid4()}.partial"


def replace_atomically(write: Any, path: Path) -> None:
    """Calls write(temporary path), then renames the temporary file into `path` (removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    replace_atomically(lambda t: t.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8"), path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    replace_atomically(lambda t: save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(t), metadata=metadata), path)


class PreparedData:
    """A prepare-data step's output."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        index = read_json(self.folder / "index.json")
        self.height: int = index["height"]
        self.width: int = index["width"]
        self.channels: int = index["channels"]
        self.samples: list[dict[str, Any]] = index["samples"]
        # Data prepared for a ControlNet: each sample's conditioning image has this many channels.
        conditioning = index.get("conditioning")
        self.condition_channels: int | None = None if conditioning is None else conditioning["channels"]

    def pixels(self, i: int) -> np.ndarray:
        """Sample i, HWC float32 in [-1, 1]."""
        path = self.folder / self.samples[i]["file"]
        values = np.fromfile(path, dtype="<f4")
        expected = self.height * self.width * self.channels
        if values.size != expected:
            raise ValueError(f"{path}: holds {values.size} values, the index says {self.width}×{self.height}×{self.channels}")
        return values.reshape(self.height, self.width, self.channels)

    def condition(self, i: int) -> np.ndarray:
        """Sample i's conditioning image, HWC float32 in [0, 1] (conditions/<n>.f32)."""
        file = self.samples[i].get("condition")
        if file is None or self.condition_channels is None:
            raise ValueError(f"{self.folder / 'index.json'}: sample {self.samples[i]['id']} has no conditioning image")
        path = self.folder / file
        values = np.fromfile(path, dtype="<f4")
        expected = self.height * self.width * self.condition_channels
        if values.size != expected:
            raise ValueError(f"{path}: holds {values.size} values, the index says {self.width}×{self.height}×{self.condition_channels}")
        return values.reshape(self.height, self.width, self.condition_channels)


class ShardedWriter:
    """Writes `<prefix>-NNNNN.safetensors` shards of float32 tensors; `add` returns each tensor's location."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix
        self.pending: dict[str, np.ndarray] = {}
        self.bytes = 0
        self.shard = 0

    def _file(self) -> str:
        return f"{self.prefix}-{self.shard:05d}.safetensors"

    def add(self, values: np.ndarray) -> dict[str, str]:
        location = {"file": self._file(), "tensor": str(len(self.pending))}
        self.pending[location["tensor"]] = np.ascontiguousarray(values, dtype=np.float32)
        self.bytes += values.size * 4
        if self.bytes >= SHARD_BYTES:
            self.finish()
        return location

    def finish(self) -> None:
        if not self.pending:
            return
        write_safetensors(self.folder / self._file(), self.pending, {"format": "sardine"})
        self.pending = {}
        self.bytes = 0
        self.shard += 1


class ShardedReader:
    """Reads tensors of a folder's shards by location, opening each shard once."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.open: dict[str, Any] = {}

    def read(self, location: dict[str, str]) -> np.ndarray:
        shard = self.open.get(location["file"])
        if shard is None:
            shard = safe_open(str(self.folder / location["file"]), framework="np")
            self.open[location["file"]] = shard
        return shard.get_tensor(location["tensor"])
