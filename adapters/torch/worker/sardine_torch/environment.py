"""What the worker runs on: package versions, devices, threads (the `hello` message and `sardine engine check`)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from typing import Any

# The packages whose versions the engine checks against adapters/torch/requirements.txt.
PINNED = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "numpy", "onnx")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def configure() -> None:
    """SARDINE_TORCH_THREADS sets torch's intra-op threads (default: torch's own choice). The same declaration
    gives the same numbers on the same machine: on CUDA, deterministic algorithms where torch has them
    (cuBLAS's workspace fixed before CUDA starts, cuDNN without autotuning); a warning names any op without one.
    Not torch's NaN fill of every new tensor that deterministic mode adds: it only makes ops that read memory
    they never wrote repeatable (sardine's outputs are the same bits without it), at a fill per allocation,
    4 % of a demo train step on the CPU and a kernel launch per allocation on CUDA."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    threads = os.environ.get("SARDINE_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def device_name() -> str:
    """SARDINE_TORCH_DEVICE when set ("cpu", "cuda", "cuda:1", "mps"), else the first CUDA device, else the CPU."""
    import torch

    chosen = os.environ.get("SARDINE_TORCH_DEVICE")
    if chosen:
        return chosen
    return "cuda" if torch.cuda.is_available() else "cpu"


def describe() -> dict[str, Any]:
    """The hello message's fields. Imports torch (which may fail: the caller reports that)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append({
                "name": f"cuda:{index} {properties.name}",
                "memoryBytes": int(properties.total_memory),
                "bf16": bool(torch.cuda.is_bf16_supported()) if index == torch.cuda.current_device() else None,
            })
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": {package: _version(package) for package in PINNED},
        "bitsandbytes": _version("bitsandbytes") if importlib.util.find_spec("bitsandbytes") is not None else None,
        "cuda": torch.version.cuda,
        "devices": devices,
        "device": device_name(),
        "threads": torch.get_num_threads(),
    }
