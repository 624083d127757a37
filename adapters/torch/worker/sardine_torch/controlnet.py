"""A conditioned experiment's ControlNet on torch, as the tfjs engine has it (adapters/tfjs/controlnet.ts,
training/trained-controlnet.ts, sampling/guidance.ts):

  made    diffusers' `ControlNetModel.from_unet` from the base's UNet (the embedding's convolutions drawn by
          torch after torch.manual_seed(seed), as init_model.py draws a new model: torch's values, not the tfjs
          engine's; the engine is part of the train step's content key), or loaded from a diffusers folder;
  trained as the component "controlnet" under its treatment (adaptation.py), at conditioning scale 1 as
          diffusers' train_controlnet.py;
  written as the trained model's `controlnet/` (LoRA merged) and `controlnet-ema/` diffusers folders, which
          both engines' generate and export read;
  sampled as StableDiffusion(XL)ControlNetPipeline runs it: the image repeated over the guided batch, or in
          guess mode under guidance on the conditional half only, zero residuals for the other.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .adaptation import Adapted
from .files import temporary_name
from .trained_model import merged_lora_delta

CONTROLNET_FOLDER = "controlnet"
CONTROLNET_EMA_FOLDER = "controlnet-ema"
COMPONENT = "controlnet"
# diffusers' default conditioning_embedding_out_channels.
DIFFUSERS_EMBEDDING = (16, 32, 96, 256)


def embedding_widths(declared: dict[str, Any], vae_config: dict[str, Any]) -> list[int]:
    """Declared, or diffusers' default cut to one stage more than the VAE halves (trained-controlnet.ts)."""
    stages = len(vae_config["block_out_channels"])
    widths = declared.get("embedding")
    if widths is not None:
        if len(widths) != stages:
            raise ValueError(f"conditioning.embedding: lists {len(widths)} widths, but the base's VAE halves the image {stages - 1} times, "
                             f"so the conditioning embedding needs {stages} stages (one more than the halvings)")
        return list(widths)
    if stages > len(DIFFUSERS_EMBEDDING):
        raise ValueError(f"conditioning.embedding: the base's VAE halves the image {stages - 1} times, more than diffusers' default "
                         f"embedding covers; declare {stages} widths")
    return list(DIFFUSERS_EMBEDDING[:stages])


def initial_controlnet(declared: dict[str, Any], folder: str | None, unet: nn.Module, vae_config: dict[str, Any], channels: int | None,
                       data_index: str, seed: int) -> nn.Module:
    """The ControlNet training starts from, checked against the prepared conditioning images and the VAE."""
    from diffusers.models import ControlNetModel

    if channels is None:
        raise ValueError(f"{data_index}: holds no conditioning images, but the experiment trains a ControlNet")
    if declared["init"] == "unet":
        widths = embedding_widths(declared, vae_config)
        torch.manual_seed(seed)
        model = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=tuple(widths), conditioning_channels=channels)
        origin = "made from the UNet"
    else:
        if folder is None:
            raise ValueError(f"conditioning.init: the folder {declared['init']!r} was not resolved by the caller")
        model = ControlNetModel.from_pretrained(folder)
        origin = folder
    halvings = len(vae_config["block_out_channels"]) - 1
    factor = 2 ** (len(model.config.conditioning_embedding_out_channels) - 1)
    if model.config.conditioning_channels != channels:
        problem = f"takes {model.config.conditioning_channels}-channel conditioning images, the prepared ones have {channels}"
    elif factor != 2**halvings:
        problem = f"embeds conditioning images {factor} × the latents, but the base's VAE makes latents {2**halvings} × smaller than the images"
    else:
        return model
    raise ValueError(f"conditioning.init: the ControlNet {origin} {problem}")


def load_controlnet(folder: str) -> nn.Module:
    from diffusers.models import ControlNetModel

    return ControlNetModel.from_pretrained(folder)


def residuals(controlnet: nn.Module, sample: torch.Tensor, timesteps: Any, context: torch.Tensor, added: dict[str, torch.Tensor] | None,
              condition: torch.Tensor, scale: float = 1.0, guess_mode: bool = False) -> dict[str, Any]:
    """ControlNetModel.forward's residuals, as the UNet's keyword arguments."""
    dtype = next(controlnet.parameters()).dtype
    kwargs = {} if added is None else {"added_cond_kwargs": {k: v.to(dtype) for k, v in added.items()}}
    down, mid = controlnet(sample.to(dtype), timesteps, encoder_hidden_states=context.to(dtype), controlnet_cond=condition.to(sample.device, dtype),
                           conditioning_scale=scale, guess_mode=guess_mode, return_dict=False, **kwargs)
    return {"down_block_additional_residuals": list(down), "mid_block_additional_residual": mid}


@dataclass
class Control:
    """A ControlNet with one sample's conditioning image [1, C, H, W] (the pipelines' `image`)."""

    model: nn.Module
    image: torch.Tensor
    scale: float
    guess_mode: bool

    def residuals_for(self, model_input: torch.Tensor, t: Any, context: torch.Tensor, added: dict[str, torch.Tensor] | None,
                      guided: bool) -> dict[str, Any]:
        """The residuals for the UNet's batch (row 0 unconditional when guided)."""
        if not (self.guess_mode and guided):
            image = self.image.repeat(model_input.shape[0], 1, 1, 1)
            return residuals(self.model, model_input, t, context, added, image, self.scale, self.guess_mode)
        half = None if added is None else {k: v[1:] for k, v in added.items()}
        out = residuals(self.model, model_input[1:], t, context[1:], half, self.image, self.scale, True)
        return {
            "down_block_additional_residuals": [torch.cat([torch.zeros_like(r), r]) for r in out["down_block_additional_residuals"]],
            "mid_block_additional_residual": torch.cat([torch.zeros_like(out["mid_block_additional_residual"]), out["mid_block_additional_residual"]]),
        }


def plain_state(model: nn.Module, adapted: Adapted, values: dict[str, torch.Tensor] | None, lora_scale: float) -> dict[str, torch.Tensor]:
    """The ControlNet's state dict under diffusers' names: PEFT's wrapping undone, LoRA merged at `lora_scale`,
    trained tensors taken from `values` (sardine names, the EMA's) where given."""
    prefix = f"{COMPONENT}."
    trained = {t.name: t for t in adapted.trainables if t.name.startswith(prefix)}

    def value_of(name: str, tensor: torch.Tensor) -> torch.Tensor:
        full = prefix + name
        return values[full] if values is not None and full in values else tensor

    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if ".lora_A." in key or ".lora_B." in key or ".lora_dropout." in key:
            continue
        name = key.replace(".base_layer.", ".")
        state[name] = value_of(name, tensor).detach().float().cpu().clone()
    for module in adapted.lora.get(COMPONENT, []):
        down_name, up_name = f"{module.module}.lora_A.weight", f"{module.module}.lora_B.weight"
        down = value_of(down_name, trained[prefix + down_name].parameter).detach().float().cpu()
        up = value_of(up_name, trained[prefix + up_name].parameter).detach().float().cpu()
        state[f"{module.module}.weight"] += merged_lora_delta(down, up, lora_scale)
    return {k: v.contiguous() for k, v in state.items()}


def write_folder(out: Path, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A diffusers ControlNet folder (config.json, diffusion_pytorch_model.safetensors) under a temporary name,
    renamed into `out` when complete (a folder there is replaced)."""
    temporary = temporary_name(out)
    try:
        temporary.mkdir(parents=True)
        model.save_config(str(temporary))
        save_file(state, str(temporary / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
        shutil.rmtree(out, ignore_errors=True)
        os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write_trained_controlnet(work_dir: Path, model: nn.Module, adapted: Adapted, ema: dict[str, torch.Tensor] | None, treatment: dict[str, Any]) -> None:
    """controlnet/ with the final weights and, with an EMA, controlnet-ema/ with its values of what trained."""
    scale = treatment["scale"] if treatment["_tag"] == "lora" else 1.0
    write_folder(work_dir / CONTROLNET_FOLDER, model, plain_state(model, adapted, None, scale))
    if ema is not None:
        write_folder(work_dir / CONTROLNET_EMA_FOLDER, model, plain_state(model, adapted, ema, scale))
