"""A diffusers pipeline folder as the worker loads it: the models one by one (an operation loads only what it
needs), each text encoder with its tokenizer, and the scheduler config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import read_json

# The text encoder classes sardine's pipelines use (as adapters/tfjs/encoding/text-encoders.ts accepts them).
TEXT_ENCODER_CLASSES = ("CLIPTextModel", "CLIPTextModelWithProjection")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


@dataclass
class TextEncoder:
    name: str
    model: nn.Module
    tokenizer: Any


def model_index(folder: str) -> dict[str, Any]:
    return read_json(Path(folder) / "model_index.json")


def encoder_names(folder: str) -> list[str]:
    """The text encoders a pipeline folder has, in pipeline order; each must be a CLIP text model."""
    index = model_index(folder)
    names = []
    for name in TEXT_ENCODERS:
        entry = index.get(name)
        if not isinstance(entry, list) or len(entry) < 2 or entry[1] is None:
            continue
        if entry[1] not in TEXT_ENCODER_CLASSES:
            raise ValueError(f"{Path(folder) / 'model_index.json'}: component {name!r} is {entry[1]}; sardine needs {' or '.join(TEXT_ENCODER_CLASSES)}")
        names.append(name)
    if not names:
        raise ValueError(f"{Path(folder) / 'model_index.json'}: names no text_encoder or text_encoder_2")
    return names


def load_unet(folder: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    from diffusers.models import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)


def load_vae(folder: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    from diffusers.models import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)


def load_tokenizer(folder: str, encoder: str) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, subfolder=encoder.replace("text_encoder", "tokenizer"))


def load_text_encoders(folder: str, dtype: torch.dtype = torch.float32) -> list[TextEncoder]:
    import transformers

    index = model_index(folder)
    encoders = []
    for name in encoder_names(folder):
        cls = getattr(transformers, index[name][1])
        model = cls.from_pretrained(folder, subfolder=name, torch_dtype=dtype)
        encoders.append(TextEncoder(name, model, load_tokenizer(folder, name)))
    return encoders


def noise_scheduler(folder: str) -> Any:
    """The forward process of the pipeline's scheduler config, as training reads it (DDPMScheduler.from_config)."""
    from diffusers.schedulers import DDPMScheduler

    return DDPMScheduler.from_config(read_json(Path(folder) / "scheduler" / "scheduler_config.json"))


def checkpoint_prefix(model: nn.Module) -> str:
    """What the model's checkpoint names have before its own parameter names: transformers 5's CLIPTextModel
    holds the text model's modules itself and maps the files' `text_model.…` names onto them."""
    if type(model).__name__ == "CLIPTextModel" and not hasattr(model, "text_model"):
        return "text_model."
    return ""


def named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters by their checkpoint (diffusers / transformers file, and sardine) names."""
    prefix = checkpoint_prefix(model)
    return [(prefix + n, p) for n, p in model.named_parameters()]


def named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    prefix = checkpoint_prefix(model)
    return [(prefix + n, m) for n, m in model.named_modules() if n]


def checkpoint_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict under its checkpoint names, float32, ready for a safetensors file."""
    prefix = checkpoint_prefix(model)
    return {prefix + k: v.detach().float().contiguous() for k, v in model.state_dict().items()}


def frozen(model: nn.Module) -> nn.Module:
    model.requires_grad_(False)
    model.eval()
    return model
