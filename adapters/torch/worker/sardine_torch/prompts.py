"""Text conditioning as diffusers' pipelines compute it (encode_prompt, no clip skip), with gradients when the
encoders train: SD 1.x / 2.x the last hidden state; SDXL both encoders' penultimate hidden states concatenated
and the second encoder's pooled projection."""

from __future__ import annotations

from typing import Sequence

import torch

from .pipeline import TextEncoder


def spell_out(prompt: str, spellings: Sequence[str]) -> str:
    """diffusers' maybe_convert_prompt: every occurrence of a multi-vector token becomes all its spellings."""
    return prompt if len(spellings) <= 1 else (" ".join(spellings)).join(prompt.split(spellings[0]))


def token_ids(encoder: TextEncoder, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
    tokenizer = encoder.tokenizer
    ids = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    return ids.to(device)


def is_sdxl(encoders: Sequence[TextEncoder]) -> bool:
    return len(encoders) == 2


def encode(encoders: Sequence[TextEncoder], prompts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(prompt embeddings [B, 77, dim], pooled [B, projection] for SDXL else None)."""
    if not is_sdxl(encoders):
        encoder = encoders[0]
        return encoder.model(token_ids(encoder, prompts, device))[0], None
    states = []
    pooled = None
    for encoder in encoders:
        out = encoder.model(token_ids(encoder, prompts, device), output_hidden_states=True)
        states.append(out.hidden_states[-2])
        pooled = out[0]
    if pooled is None or pooled.ndim != 2:
        raise ValueError("SDXL's last text encoder must be a CLIPTextModelWithProjection")
    return torch.cat(states, dim=-1), pooled


def sdxl_time_ids(height: int, width: int, batch: int, device: torch.device) -> torch.Tensor:
    """Original size, crop corner (0, 0), target size: the image's own, for every row."""
    return torch.tensor([[height, width, 0, 0, height, width]] * batch, dtype=torch.float32, device=device)
