"""The `generate` operation: every prompt × seed × replicate of the request sampled with the base (and the trained
model applied), each sample's normalised amplitude written as raw float32 into `rawDir` and announced with a
`sample` message; the engine writes the TIFF, the PNG and samples.json from them, as the tfjs engine does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .adapter_files import apply_adapter_files
from .controlnet import Control, load_controlnet
from .environment import device_name
from .files import read_json, replace_atomically
from .pipeline import frozen, load_text_encoders, load_unet, load_vae, model_index
from .protocol import Channel
from .sampling import decode_amplitude, make_scheduler, prompt_conditioning, sample_latents, uses_guidance, vae_scale_factor
from .trained_model import apply_trained_model


def force_zeros_for_empty_prompt(base: str, sdxl: bool) -> bool:
    """SDXL pipelines' `force_zeros_for_empty_prompt` (model_index.json, default true), as diffusion-models.ts."""
    return sdxl and model_index(base).get("force_zeros_for_empty_prompt") is not False


def scene_condition(file: str, side: int, channels: int) -> torch.Tensor:
    """A prepared scene's conditioning image (HWC float32 in [0, 1]) as [1, C, H, W]."""
    values = np.fromfile(file, dtype="<f4")
    if values.size != side * side * channels:
        raise ValueError(f"{file}: holds {values.size} values, a {side}×{side} conditioning image of {channels} channels has {side * side * channels}")
    return torch.from_numpy(np.ascontiguousarray(values.reshape(1, side, side, channels).transpose(0, 3, 1, 2)))


def generate(request: dict[str, Any], channel: Channel) -> dict[str, Any]:
    base: str = request["base"]
    device = torch.device(device_name())
    unet = frozen(load_unet(base))
    vae = frozen(load_vae(base))
    encoders = load_text_encoders(base)
    models = {"unet": unet, "vae": vae, **{e.name: frozen(e.model) for e in encoders}}
    if request["trained"] is not None:
        apply_trained_model(models, encoders, request["trained"])
    apply_adapter_files(models, encoders, request.get("adapterFiles", []))
    # A conditioned experiment: its trained ControlNet, and each prompt's (scene's) conditioning image.
    declared_control = request.get("control")
    if declared_control is not None:
        models["controlnet"] = frozen(load_controlnet(declared_control["folder"]))
    for model in models.values():
        model.to(device)
    side: int = request["resolution"]
    factor = vae_scale_factor(vae.config)
    if side % factor != 0:
        raise ValueError(f"generate.resolution: {side} pixels is not a multiple of the VAE's scale factor {factor}")
    scheduler_config = read_json(Path(base) / "scheduler" / "scheduler_config.json")
    guided = uses_guidance(request["guidanceScale"])
    sdxl = len(encoders) == 2
    zeros = force_zeros_for_empty_prompt(base, sdxl)
    raw = Path(request["rawDir"])
    raw.mkdir(parents=True, exist_ok=True)
    negatives: list[str | None] = request["negativePrompts"]
    for prompt_index, prompt in enumerate(request["prompts"]):
        conditioning = prompt_conditioning(encoders, prompt, guided, side, zeros, device, negatives[prompt_index])
        control = None if declared_control is None else Control(
            models["controlnet"], scene_condition(declared_control["conditions"][prompt_index], side, declared_control["channels"]).to(device),
            declared_control["scale"], declared_control["guessMode"])
        for seed in request["seeds"]:
            for replicate in range(request["samplesPerPrompt"]):
                channel.check_stop()
                scheduler, options = make_scheduler(request["sampler"], scheduler_config, request["steps"], request["eta"], device,
                                                    request["schedulerConfig"])
                latents = sample_latents(unet, scheduler, options, conditioning, request["guidanceScale"], (side // factor, side // factor), seed, replicate, device,
                                         control)
                amplitude = decode_amplitude(vae, latents)
                file = raw / f"p{prompt_index:03d}-s{seed}-r{replicate}.f32"
                replace_atomically(lambda t: amplitude.astype("<f4").tofile(t), file)
                channel.send("sample", promptIndex=prompt_index, seed=seed, replicate=replicate, file=str(file), width=side, height=side)
    return {}
