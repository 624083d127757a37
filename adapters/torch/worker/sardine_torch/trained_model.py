"""A train step's trained model, in the files the tfjs engine reads (adapters/tfjs/training/trained-model-files.ts):

  model.safetensors   the trained tensors in tfjs layout (Linear [in, out], Conv2d HWIO): every trained
                      parameter of a fully trained component, LoRA A and B, the token rows of every encoder
  ema.safetensors     their exponential moving average, same names (when declared)
The worker writes these two; the engine writes training.json and the manifest model.json after them (the
manifest last: its presence means the model is complete).

Applying a trained model to freshly loaded models (generate, export): fully trained tensors replace the
base's, LoRA is merged into the base weights (W + scale · B·A), the token's rows follow each encoder's table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from .adaptation import ADDED_TOKEN_EMBEDDING, Adapted, add_token_to_tokenizer, from_tfjs, layouts, set_token_rows, to_tfjs
from .files import write_safetensors
from .pipeline import TextEncoder, named_parameters

MODEL_WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
METADATA = {"format": "sardine-model"}


def tfjs_values(tensor: torch.Tensor, layout: str) -> np.ndarray:
    return np.ascontiguousarray(to_tfjs(tensor.detach().float().cpu(), layout).numpy())


def write_model(folder: Path, adapted: Adapted, ema: dict[str, torch.Tensor] | None) -> None:
    """model.safetensors (the trainables and the untrained token rows) and ema.safetensors, tfjs layout."""
    tensors = {t.name: tfjs_values(t.parameter, t.layout) for t in adapted.trainables}
    for encoder, rows in adapted.token_rows.items():
        tensors.setdefault(f"{encoder}.{ADDED_TOKEN_EMBEDDING}", tfjs_values(rows, "as-is"))
    write_safetensors(folder / MODEL_WEIGHTS, tensors, METADATA)
    if ema is not None:
        layout = {t.name: t.layout for t in adapted.trainables}
        write_safetensors(folder / EMA_WEIGHTS, {name: tfjs_values(value, layout[name]) for name, value in ema.items()}, METADATA)


class TrainedTensors:
    """The tensors of a trained model folder by name: the EMA's where asked for and kept, else the final ones."""

    def __init__(self, folder: str, use_ema: bool) -> None:
        self.weights = safe_open(str(Path(folder) / MODEL_WEIGHTS), framework="pt")
        ema_file = Path(folder) / EMA_WEIGHTS
        self.ema = safe_open(str(ema_file), framework="pt") if use_ema and ema_file.exists() else None
        self.ema_names = set(self.ema.keys()) if self.ema is not None else set()
        self.names = list(self.weights.keys())

    def get(self, name: str) -> torch.Tensor:
        source = self.ema if name in self.ema_names else self.weights
        return source.get_tensor(name).float()


def merged_lora_delta(down: torch.Tensor, up: torch.Tensor, scale: float) -> torch.Tensor:
    """scale · (B after A) as one weight in torch layout (Linear B·A; Conv: B's 1×1 map applied to every tap of A)."""
    if down.dim() == 2:
        return scale * (up @ down)
    return scale * torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down)


def apply_to_component(model: nn.Module, component: str, tensors: TrainedTensors, lora_scale: float | None) -> bool:
    """Applies the component's trained tensors to `model` (in place); whether it had any."""
    prefix = f"{component}."
    names = [n[len(prefix):] for n in tensors.names if n.startswith(prefix) and not n.endswith(ADDED_TOKEN_EMBEDDING)]
    if not names:
        return False
    parameters = dict(named_parameters(model))
    kinds = layouts(model)
    with torch.no_grad():
        for name in names:
            if name.endswith(".lora_A.weight") or name.endswith(".lora_B.weight"):
                continue
            if name not in parameters:
                raise ValueError(f"the trained model has {prefix}{name}, which the base's {component} has not")
            value = from_tfjs(tensors.get(prefix + name), kinds.get(name, "as-is"))
            target = parameters[name]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{prefix}{name} has shape {list(value.shape)}, the base's {list(target.shape)}")
            target.copy_(value.to(target.dtype))
        for name in names:
            if not name.endswith(".lora_A.weight"):
                continue
            module = name[: -len(".lora_A.weight")]
            weight = parameters.get(f"{module}.weight")
            if weight is None or lora_scale is None:
                raise ValueError(f"the trained model has a LoRA on {prefix}{module}, which the base's {component} cannot take")
            kind = kinds[f"{module}.weight"]
            down = from_tfjs(tensors.get(f"{prefix}{module}.lora_A.weight"), kind)
            up = from_tfjs(tensors.get(f"{prefix}{module}.lora_B.weight"), kind)
            weight.add_(merged_lora_delta(down, up, lora_scale).to(weight.dtype))
    return True


def apply_token(encoders: Sequence[TextEncoder], tensors: TrainedTensors, spellings: Sequence[str]) -> None:
    """Adds the learned token to every encoder: tokenizer entries and the trained (or init) rows."""
    for encoder in encoders:
        rows = tensors.get(f"{encoder.name}.{ADDED_TOKEN_EMBEDDING}")
        add_token_to_tokenizer(encoder, spellings)
        set_token_rows(encoder, rows, trains=False)


def apply_trained_model(models: dict[str, nn.Module], encoders: Sequence[TextEncoder], trained: dict[str, Any]) -> None:
    """The request's `trained` part: {dir, useEma, loraScales: {component: scale}, spellings: [...] | null}."""
    tensors = TrainedTensors(trained["dir"], trained["useEma"])
    for component, model in models.items():
        apply_to_component(model, component, tensors, trained["loraScales"].get(component))
    if trained["spellings"] is not None:
        apply_token(encoders, tensors, trained["spellings"])
