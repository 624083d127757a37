"""The training objectives, as the tfjs engine defines them (diffusion-loss.ts, vae-loss.ts) and diffusers'
training scripts compute them."""

from __future__ import annotations

from typing import Any

import torch

from .controlnet import residuals


def min_snr_weights(scheduler: Any, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ (Hang et al. 2023) as diffusers' scripts: min(SNR, γ)/SNR for ε targets, /(SNR + 1) for v."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps).float()
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    # A zero-terminal-SNR schedule's last step has SNR 0: nothing to weigh there.
    return torch.where(snr == 0, torch.zeros_like(snr), clipped / torch.where(snr == 0, torch.ones_like(snr), snr))


def diffusion_loss(
    scheduler: Any,
    unet: Any,
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    added: dict[str, torch.Tensor] | None,
    min_snr_gamma: float | None,
    control: tuple[Any, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Noise the latents at each row's timestep, predict, mean squared error against ε or v per row, weighted.
    With `control` (a ControlNet and each row's conditioning image), the UNet adds its residuals at scale 1."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    elif scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        raise ValueError(f"prediction_type {scheduler.config.prediction_type!r}: sardine trains epsilon and v_prediction")
    kwargs = {} if added is None else {"added_cond_kwargs": added}
    if control is not None:
        kwargs.update(residuals(control[0], noisy, timesteps, encoder_hidden_states, added, control[1]))
    prediction = unet(noisy, timesteps, encoder_hidden_states=encoder_hidden_states, **kwargs).sample
    per_row = ((prediction.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    if min_snr_gamma is None:
        return per_row.mean()
    return (per_row * min_snr_weights(scheduler, timesteps, min_snr_gamma).to(per_row.device)).mean()


def vae_loss(vae: Any, images: torch.Tensor, draws: torch.Tensor, objective: dict[str, Any]) -> torch.Tensor:
    """Encode, sample the latent with the given draws (reparameterised), decode; L1 or MSE plus klWeight × KL
    to N(0, I) (summed over latent elements, averaged over the batch, as DiagonalGaussianDistribution.kl())."""
    posterior = vae.encode(images).latent_dist
    mean, logvar = posterior.mean, posterior.logvar
    latents = mean + torch.exp(0.5 * logvar) * draws.to(mean.dtype)
    reconstruction = vae.decode(latents).sample.float()
    difference = reconstruction - images.float()
    error = difference.abs().mean() if objective["loss"] == "l1" else (difference**2).mean()
    if objective["klWeight"] == 0:
        return error
    kl = (0.5 * (mean.float() ** 2 + torch.exp(logvar.float()) - 1 - logvar.float()).sum(dim=(1, 2, 3))).mean()
    return error + objective["klWeight"] * kl
