"""Sampling as diffusers' pipelines run it (scale the input, predict with classifier-free guidance, step), with
sardine's noise: the initial latents and every stochastic step's noise come, in that order, from the sample's
(seed, replicate) Gaussian stream (draws.GaussianStream), as the tfjs engine's sampler draws them
(adapters/tfjs/sampling/sample-image.ts). The same stream gives the same image on both engines.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from . import prompts
from .controlnet import Control
from .draws import GaussianStream
from .pipeline import TextEncoder


def make_scheduler(sampler: str, config: dict[str, Any], steps: int, eta: float, device: torch.device,
                   scheduler_config: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The declared sampler on the pipeline's scheduler config with the declared keys on top
    (`<Scheduler>.from_config(config, **scheduler_config)`), its timesteps set, and the options its step() takes.
    The names are sardine's (framework/declaration/generation.ts, schedulerClasses), each one diffusers class."""
    from diffusers.schedulers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                                      EulerDiscreteScheduler, HeunDiscreteScheduler, UniPCMultistepScheduler)

    classes = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "euler": EulerDiscreteScheduler,
               "euler_ancestral": EulerAncestralDiscreteScheduler, "heun": HeunDiscreteScheduler,
               "dpmsolver_multistep": DPMSolverMultistepScheduler, "unipc_multistep": UniPCMultistepScheduler}
    if sampler not in classes:
        raise ValueError(f"generate.sampler: {sampler!r} is not one of {', '.join(classes)}")
    scheduler = classes[sampler].from_config(config, **(scheduler_config or {}))
    scheduler.set_timesteps(steps, device=device)
    return scheduler, ({"eta": eta} if sampler == "ddim" else {})


@contextlib.contextmanager
def step_noise_from(scheduler: Any, stream: GaussianStream) -> Iterator[None]:
    """diffusers' schedulers draw their stochastic steps' noise inside `step()` with the module's `randn_tensor`
    (DDPM takes no noise argument); for the sampling loop it is sardine's stream, in torch's NCHW order."""
    module = sys.modules[type(scheduler).__module__]
    # Heun and UniPC are deterministic: their modules draw nothing.
    if not hasattr(module, "randn_tensor"):
        yield
        return
    original = module.randn_tensor

    def draw(shape: Sequence[int], generator: Any = None, device: Any = None, dtype: Any = None, **_: Any) -> torch.Tensor:
        values = stream.values(int(np.prod(shape))).reshape(tuple(shape))
        return torch.from_numpy(values).to(device=device, dtype=dtype)

    module.randn_tensor = draw
    try:
        yield
    finally:
        module.randn_tensor = original


@dataclass
class Conditioning:
    """The UNet's conditioning for one prompt; row 0 unconditional when guided (diffusers' batch order)."""

    context: torch.Tensor
    added: dict[str, torch.Tensor] | None
    guided: bool


def uses_guidance(scale: float) -> bool:
    return scale > 1


@torch.no_grad()
def prompt_conditioning(encoders: Sequence[TextEncoder], prompt: str, guided: bool, side: int,
                        force_zeros_for_empty_prompt: bool, device: torch.device,
                        negative_prompt: str | None = None) -> Conditioning:
    """encode_prompt of StableDiffusionPipeline / StableDiffusionXLPipeline for one prompt and its negative prompt:
    None is diffusers' default (the empty prompt, zeros for SDXL pipelines that force them), an explicit "" is
    encoded; with SDXL's size and crop ids."""
    context, pooled = prompts.encode(encoders, [prompt], device)
    negative_text = "" if negative_prompt is None else negative_prompt
    if not prompts.is_sdxl(encoders):
        if guided:
            context = torch.cat([prompts.encode(encoders, [negative_text], device)[0], context])
        return Conditioning(context, None, guided)
    if guided:
        if negative_prompt is None and force_zeros_for_empty_prompt:
            negative, negative_pooled = torch.zeros_like(context), torch.zeros_like(pooled)
        else:
            negative, negative_pooled = prompts.encode(encoders, [negative_text], device)
        context = torch.cat([negative, context])
        pooled = torch.cat([negative_pooled, pooled])
    time_ids = prompts.sdxl_time_ids(side, side, context.shape[0], device)
    return Conditioning(context, {"text_embeds": pooled, "time_ids": time_ids}, guided)


@torch.no_grad()
def sample_latents(unet: Any, scheduler: Any, step_options: dict[str, Any], conditioning: Conditioning, guidance_scale: float,
                   latent_size: tuple[int, int], seed: int, replicate: int, device: torch.device, control: Control | None = None) -> torch.Tensor:
    """The final latents [1, C, h, w] of one sample; `scheduler` has its timesteps set, `step_options` go to its
    step() (DDIM's eta); with `control`, the UNet adds the ControlNet's residuals."""
    stream = GaussianStream(seed, replicate)
    channels = unet.config.in_channels
    initial = torch.from_numpy(stream.values(channels * latent_size[0] * latent_size[1]).reshape(1, channels, *latent_size))
    latents = initial.to(device) * scheduler.init_noise_sigma
    dtype = next(unet.parameters()).dtype
    with step_noise_from(scheduler, stream):
        for t in scheduler.timesteps:
            model_input = torch.cat([latents, latents]) if conditioning.guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            kwargs = {} if conditioning.added is None else {"added_cond_kwargs": {k: v.to(dtype) for k, v in conditioning.added.items()}}
            if control is not None:
                residuals = control.residuals_for(model_input, t, conditioning.context, conditioning.added, conditioning.guided)
                kwargs.update({k: [r.to(dtype) for r in v] if isinstance(v, list) else v.to(dtype) for k, v in residuals.items()})
            prediction = unet(model_input.to(dtype), t, encoder_hidden_states=conditioning.context.to(dtype), **kwargs).sample.float()
            if conditioning.guided:
                unconditional, conditional = prediction.chunk(2)
                prediction = unconditional + guidance_scale * (conditional - unconditional)
            latents = scheduler.step(prediction, t, latents, **step_options).prev_sample
    return latents


@torch.no_grad()
def decode_amplitude(vae: Any, latents: torch.Tensor) -> np.ndarray:
    """The normalised amplitude [H, W] in [0, 1]: decoded at latents / scaling_factor, [−1, 1] mapped to [0, 1]
    and clamped as diffusers' postprocessing does, averaged over the channels (sample-image.ts)."""
    dtype = next(vae.parameters()).dtype
    image = vae.decode((latents / vae.config.scaling_factor).to(dtype)).sample.float()
    unit = (image / 2 + 0.5).clamp(0, 1)
    return unit.mean(dim=1)[0].cpu().numpy().astype(np.float32)


def vae_scale_factor(vae_config: dict[str, Any]) -> int:
    return 2 ** (len(vae_config["block_out_channels"]) - 1)
