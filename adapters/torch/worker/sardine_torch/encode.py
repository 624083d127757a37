"""The `encode-latents` and `encode-text` operations: the frozen encoders' outputs for every prepared sample, in
the tfjs engine's cache files (adapters/tfjs/encoding/latent-cache.ts, text-cache.ts). The worker writes the
shards and returns the index; the engine writes the index file (latents.json / text.json) last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import prompts
from .batches import image_batch
from .environment import device_name
from .files import PreparedData, ShardedWriter
from .pipeline import frozen, load_text_encoders, load_vae
from .protocol import Channel

LATENT_BATCH = 4
TEXT_BATCH = 8


@torch.no_grad()
def encode_latents(request: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """Each sample's latent distribution (mean and log-variance, unscaled, NHWC without the batch axis)."""
    device = torch.device(device_name())
    data = PreparedData(request["dataDir"])
    vae = frozen(load_vae(request["base"])).to(device)
    writer = ShardedWriter(Path(request["outDir"]), "latents")
    samples = []
    shape: list[int] = []
    total = len(data.samples)
    for start in range(0, total, LATENT_BATCH):
        channel.check_stop()
        chunk = range(start, min(start + LATENT_BATCH, total))
        images = torch.from_numpy(image_batch([data.pixels(i) for i in chunk], vae.config.in_channels)).to(device)
        posterior = vae.encode(images).latent_dist
        mean = posterior.mean.permute(0, 2, 3, 1).float().cpu().numpy()
        logvar = posterior.logvar.permute(0, 2, 3, 1).float().cpu().numpy()
        shape = list(mean.shape[1:])
        for row, i in enumerate(chunk):
            samples.append({"id": data.samples[i]["id"], "mean": writer.add(mean[row]), "logvar": writer.add(logvar[row])})
        channel.progress(len(samples), total, "images")
    writer.finish()
    return {
        "format": "sardine-latents",
        "version": 1,
        "scalingFactor": vae.config.scaling_factor,
        "shiftFactor": vae.config.shift_factor,
        "shape": shape,
        "samples": samples,
    }


@torch.no_grad()
def encode_text(request: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """The conditioning of every distinct caption and of the empty one (what caption dropout trains on)."""
    device = torch.device(device_name())
    data = PreparedData(request["dataDir"])
    encoders = load_text_encoders(request["base"])
    for encoder in encoders:
        frozen(encoder.model).to(device)
    captions = list(dict.fromkeys(["", *(s["caption"] for s in data.samples)]))
    writer = ShardedWriter(Path(request["outDir"]), "text")
    entries = []
    prompt_shape: list[int] = []
    pooled_shape: list[int] | None = None
    for start in range(0, len(captions), TEXT_BATCH):
        channel.check_stop()
        chunk = captions[start : start + TEXT_BATCH]
        prompt, pooled = prompts.encode(encoders, chunk, device)
        prompt = prompt.float().cpu().numpy()
        prompt_shape = list(prompt.shape[1:])
        pooled_values = None if pooled is None else pooled.float().cpu().numpy()
        pooled_shape = None if pooled_values is None else list(pooled_values.shape[1:])
        for row, caption in enumerate(chunk):
            entries.append({
                "caption": caption,
                "prompt": writer.add(prompt[row]),
                "pooled": None if pooled_values is None else writer.add(pooled_values[row]),
            })
        channel.progress(len(entries), len(captions), "captions")
    writer.finish()
    return {
        "format": "sardine-text-embeddings",
        "version": 1,
        "conditioning": "sdxl" if prompts.is_sdxl(encoders) else "sd",
        "promptShape": prompt_shape,
        "pooledShape": pooled_shape,
        "captions": entries,
    }
