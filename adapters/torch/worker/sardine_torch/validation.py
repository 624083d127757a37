"""Validation images during training (`train.validationPrompts`, every `train.validationEvery` steps): each prompt
sampled with the weights as they are at that step (Euler, 20 steps, guidance 7.5, noise stream (train.seed, 0),
the training images' size), the raw amplitude announced with an `image` message; the engine writes the PNG into
the train step's output (validation/step-NNNNNNNN/) and logs it to MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .files import PreparedData, read_json, replace_atomically
from .generate import force_zeros_for_empty_prompt
from .pipeline import TextEncoder, frozen, load_text_encoders, load_vae
from .protocol import Channel
from .sampling import decode_amplitude, make_scheduler, prompt_conditioning, sample_latents, vae_scale_factor

SAMPLER = "euler"
# Where the raw images wait for the engine, which writes the PNGs and removes them.
RAW = ".raw"
STEPS = 20
GUIDANCE = 7.5


@dataclass
class ValidationSampler:
    prompts: list[str]
    every: int
    seed: int
    base: str
    work_dir: Path
    side: int
    models: dict[str, torch.nn.Module]
    encoders: Sequence[TextEncoder]
    vae: torch.nn.Module
    sdxl: bool
    device: torch.device

    @staticmethod
    def of(request: dict[str, Any], models: dict[str, torch.nn.Module], encoders: Sequence[TextEncoder], spellings: Sequence[str],
           sdxl: bool, data: PreparedData, device: torch.device) -> "ValidationSampler":
        """Loads what sampling needs and training did not (the VAE when latents are cached, the encoders when
        text is), frozen, in fp32."""
        train = request["train"]
        base = request["base"]
        if "unet" not in models:
            raise ValueError("train.validationPrompts: validation images need the UNet in training (this run trains only the VAE)")
        vae = models["vae"] if "vae" in models else frozen(load_vae(base)).to(device)
        if not encoders:
            encoders = load_text_encoders(base)
            for e in encoders:
                frozen(e.model).to(device)
        # `{token}` in a validation prompt is the learned token, spelled out (as generation writes it).
        token = " ".join(spellings) if spellings else None
        texts = []
        for i, text in enumerate(train["validationPrompts"]):
            if "{token}" in text and token is None:
                raise ValueError(f"train.validationPrompts[{i}]: uses {{token}} but no token is learned")
            texts.append(text.replace("{token}", token or ""))
        return ValidationSampler(texts, train["validationEvery"], train["seed"], base, Path(request["workDir"]),
                                 data.height, models, encoders, vae, sdxl, device)

    def sample(self, step: int, channel: Channel) -> None:
        modes = {name: model.training for name, model in self.models.items()}
        for model in self.models.values():
            model.eval()
        try:
            config = read_json(Path(self.base) / "scheduler" / "scheduler_config.json")
            factor = vae_scale_factor(self.vae.config)
            zeros = force_zeros_for_empty_prompt(self.base, self.sdxl)
            folder = self.work_dir / "validation" / RAW
            folder.mkdir(parents=True, exist_ok=True)
            for index, prompt in enumerate(self.prompts):
                conditioning = prompt_conditioning(self.encoders, prompt, True, self.side, zeros, self.device)
                scheduler, options = make_scheduler(SAMPLER, config, STEPS, 0.0, self.device)
                latents = sample_latents(self.models["unet"], scheduler, options, conditioning, GUIDANCE,
                                         (self.side // factor, self.side // factor), self.seed, 0, self.device)
                amplitude = decode_amplitude(self.vae, latents)
                file = folder / f"step-{step:08d}-p{index:02d}.f32"
                replace_atomically(lambda t: amplitude.astype("<f4").tofile(t), file)
                channel.send("image", step=step, promptIndex=index, prompt=prompt, file=str(file), width=self.side, height=self.side)
        finally:
            for name, model in self.models.items():
                model.train(modes[name])
