"""Training goldens: the reference libraries' forward process, optimiser pieces, and loading of sardine's exports.

Writes test/fixtures/training/reference.safetensors (names below; metadata holds the settings and prompts):

  schedule.<kind>.alphas_cumprod       DDPMScheduler(...).alphas_cumprod for linear, scaled_linear, squaredcos_cap_v2
                                       and scaled_linear with rescale_betas_zero_snr
  forward.x0, forward.noise, forward.timesteps, forward.noisy, forward.velocity
                                       DDPMScheduler.add_noise / get_velocity (scaled_linear) on fixed inputs
  forward.snr, forward.min_snr_epsilon, forward.min_snr_v
                                       training_utils.compute_snr and the min-SNR-γ (γ = 5) weights of diffusers'
                                       train_text_to_image scripts for epsilon and v_prediction
  adamw.*                              torch.optim.AdamW (two parameter groups, decoupled weight decay), with
                                       torch.nn.utils.clip_grad_norm_, transformers' get_cosine_schedule_with_warmup
                                       and diffusers' EMAModel, over fixed gradients: inputs and every step's results

sardine's exports are checked live against diffusers / transformers by test/export/interop.test.ts
(test/export/load_exports.py), not through goldens.

Run from the repository root: .venv/bin/python tools/make_training_goldens.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel, compute_snr
from safetensors.torch import save_file
from transformers import get_cosine_schedule_with_warmup

OUT = Path("test/fixtures/training")
GAMMA = 5.0

SCHEDULES = {
    "linear": dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02),
    "scaled_linear": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    "squaredcos_cap_v2": dict(beta_schedule="squaredcos_cap_v2"),
    "zero_snr": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True),
}


def schedule_goldens(out: dict[str, torch.Tensor]) -> None:
    for kind, config in SCHEDULES.items():
        out[f"schedule.{kind}.alphas_cumprod"] = DDPMScheduler(num_train_timesteps=1000, **config).alphas_cumprod
    scheduler = DDPMScheduler(num_train_timesteps=1000, **SCHEDULES["scaled_linear"])
    generator = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 3, 3, 2, generator=generator)
    noise = torch.randn(4, 3, 3, 2, generator=generator)
    timesteps = torch.tensor([0, 17, 500, 999])
    out["forward.x0"], out["forward.noise"], out["forward.timesteps"] = x0, noise, timesteps.to(torch.int32)
    out["forward.noisy"] = scheduler.add_noise(x0, noise, timesteps)
    out["forward.velocity"] = scheduler.get_velocity(x0, noise, timesteps)
    snr = compute_snr(scheduler, timesteps)
    out["forward.snr"] = snr
    # As train_text_to_image.py: min(SNR, γ) / SNR (epsilon), / (SNR + 1) (v_prediction).
    clipped = torch.stack([snr, GAMMA * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
    out["forward.min_snr_epsilon"] = clipped / snr
    out["forward.min_snr_v"] = clipped / (snr + 1)


ADAMW = dict(steps=6, warmup=2, betas=(0.9, 0.99), eps=1e-6, max_norm=3.0, ema_decay=0.9)
GROUPS = [dict(lr=0.01, weight_decay=0.1), dict(lr=0.05, weight_decay=0.0)]


def adamw_goldens(out: dict[str, torch.Tensor]) -> None:
    generator = torch.Generator().manual_seed(11)
    p1 = torch.nn.Parameter(torch.randn(3, 4, generator=generator))
    p2 = torch.nn.Parameter(torch.randn(5, generator=generator))
    out["adamw.initial.p1"], out["adamw.initial.p2"] = p1.detach().clone(), p2.detach().clone()
    optimizer = torch.optim.AdamW(
        [dict(params=[p1], **GROUPS[0]), dict(params=[p2], **GROUPS[1])], betas=ADAMW["betas"], eps=ADAMW["eps"]
    )
    schedule = get_cosine_schedule_with_warmup(optimizer, ADAMW["warmup"], ADAMW["steps"])
    ema = EMAModel([p1, p2], decay=ADAMW["ema_decay"])
    norms, lrs = [], []
    for step in range(ADAMW["steps"]):
        # Gradients grow with the step so that clipping acts on some steps and not others.
        p1.grad = torch.randn(3, 4, generator=generator) * (0.2 + 0.3 * step)
        p2.grad = torch.randn(5, generator=generator) * (0.2 + 0.3 * step)
        out[f"adamw.gradient.{step}.p1"], out[f"adamw.gradient.{step}.p2"] = p1.grad.clone(), p2.grad.clone()
        lrs.append([group["lr"] for group in optimizer.param_groups])
        norms.append(float(torch.nn.utils.clip_grad_norm_([p1, p2], ADAMW["max_norm"])))
        optimizer.step()
        schedule.step()
        ema.step([p1, p2])
        out[f"adamw.after.{step}.p1"], out[f"adamw.after.{step}.p2"] = p1.detach().clone(), p2.detach().clone()
        out[f"adamw.ema.{step}.p1"] = ema.shadow_params[0].detach().clone()
        out[f"adamw.ema.{step}.p2"] = ema.shadow_params[1].detach().clone()
    out["adamw.norms"] = torch.tensor(norms)
    out["adamw.lrs"] = torch.tensor(lrs)


def main() -> None:
    torch.manual_seed(0)
    out: dict[str, torch.Tensor] = {}
    schedule_goldens(out)
    adamw_goldens(out)
    metadata = {
        "gamma": str(GAMMA),
        "adamw": json.dumps({**ADAMW, "groups": GROUPS}),
    }
    save_file({k: v.contiguous().float() if v.is_floating_point() else v.contiguous() for k, v in out.items()},
              str(OUT / "reference.safetensors"), metadata=metadata)
    print(f"wrote {len(out)} tensors to {OUT / 'reference.safetensors'}")


if __name__ == "__main__":
    main()
