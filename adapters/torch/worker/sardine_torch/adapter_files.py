"""LoRA and textual-inversion files applied at generation (`sardine generate --lora / --embedding`), on the
models the worker loaded: LoRA files (kohya / A1111 or diffusers / PEFT layout) are read by diffusers'
`load_lora_weights` on a pipeline made of those models and fused at the file's scale, as a diffusers user
would; an embedding's rows follow each encoder's table as a trained token's do (the engine has read its
token and spellings from the file's header, by the tfjs engine's rules)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import load_file
from torch import nn

from .adaptation import add_token_to_tokenizer, set_token_rows
from .pipeline import TextEncoder


def lora_pipeline(models: dict[str, nn.Module], encoders: Sequence[TextEncoder]) -> Any:
    """A diffusers pipeline around the loaded models (no copies), for its LoRA loader."""
    scheduler = DDPMScheduler()
    if len(encoders) == 2:
        return StableDiffusionXLPipeline(vae=models["vae"], text_encoder=encoders[0].model, text_encoder_2=encoders[1].model,
                                         tokenizer=encoders[0].tokenizer, tokenizer_2=encoders[1].tokenizer, unet=models["unet"],
                                         scheduler=scheduler)
    return StableDiffusionPipeline(vae=models["vae"], text_encoder=encoders[0].model, tokenizer=encoders[0].tokenizer, unet=models["unet"],
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def apply_lora_files(models: dict[str, nn.Module], encoders: Sequence[TextEncoder], files: Sequence[dict[str, Any]]) -> None:
    if not files:
        return
    pipe = lora_pipeline(models, encoders)
    for i, entry in enumerate(files):
        name = f"file{i}"
        try:
            pipe.load_lora_weights(entry["file"], adapter_name=name)
        except Exception as error:  # diffusers raises ValueError / KeyError / RuntimeError for files it cannot map
            raise ValueError(f"{entry['file']}: diffusers cannot load it as a LoRA file ({error})") from error
        pipe.fuse_lora(adapter_names=[name], lora_scale=entry["scale"])
    # Fused into the weights: the LoRA layers go, the models are plain again.
    pipe.unload_lora_weights()


def apply_embedding_file(encoders: Sequence[TextEncoder], entry: dict[str, Any]) -> None:
    tensors = load_file(entry["file"])
    keys: list[str] = entry["keys"]
    if len(keys) != len(encoders):
        raise ValueError(f"{entry['file']}: holds an embedding for {len(keys)} text encoder(s) ({', '.join(keys)}); the pipeline has {len(encoders)}")
    for encoder, key in zip(encoders, keys):
        rows = tensors[key].to(torch.float32)
        add_token_to_tokenizer(encoder, entry["spellings"])
        set_token_rows(encoder, rows.reshape(len(entry["spellings"]), -1), trains=False)


def apply_adapter_files(models: dict[str, nn.Module], encoders: Sequence[TextEncoder], files: Sequence[dict[str, Any]]) -> None:
    """The request's `adapterFiles`, in their order: LoRA files fused, then the embedding (at most one)."""
    apply_lora_files(models, encoders, [f for f in files if f["kind"] == "lora"])
    for entry in files:
        if entry["kind"] == "embedding":
            apply_embedding_file(encoders, entry)
