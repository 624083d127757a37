"""Sampler goldens: diffusers' DDPMScheduler, DDIMScheduler (eta), EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
HeunDiscreteScheduler, DPMSolverMultistepScheduler and UniPCMultistepScheduler on the tiny fixture pipelines, started
from sardine's own noise so that the comparison is of the samplers, not of random generators.

Writes, under test/fixtures/sampling/:
  goldens.json         the cases: scheduler configs, steps, eta, seeds, prompts, micro-conditioning; the inference
                       timesteps (and sigmas of the sigma-space schedulers) of set_timesteps for every spacing and
                       sigma respacing (Karras, exponential); noise-stream checks
  goldens.safetensors  per case the final latents (NCHW) and, for pipeline cases, the image as sardine stores it
                       (diffusers' postprocessed [0, 1] image, mean over its channels); the fixed prompt
                       embeddings of the scheduler cases; the first values of a few noise streams

Two kinds of case:
  scheduler cases   the SD-1-like UNet on fixed prompt embeddings, no guidance, output_type="latent", for each
                    scheduler class under several configs (beta schedules, epsilon / v_prediction, the three
                    timestep spacings, Karras and exponential sigmas, zero terminal SNR, clipping, DDPM variance
                    types, DDIM eta, DPM-Solver++ orders / SDE / solver types, UniPC orders / bh1 / noise prediction)
  pipeline cases    StableDiffusionPipeline / StableDiffusionXLPipeline end to end from a prompt: tokenisation,
                    classifier-free guidance with the default or a given negative prompt (SDXL's
                    force_zeros_for_empty_prompt), SDXL micro-conditioning, a learned token, VAE decoding at
                    1 / scaling_factor

The initial latents and every stochastic step's noise come from sardine's Gaussian stream, reproduced below
(`SardineNoise`, specified in adapters/tfjs/sampling/gaussian-noise.ts): the latents are passed to the pipeline
and the schedulers' randn_tensor is replaced by the stream for the run.

Run from the repository root: .venv/bin/python tools/make_sampler_goldens.py
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                       UniPCMultistepScheduler)
from diffusers.schedulers import scheduling_ddim, scheduling_ddpm, scheduling_dpmsolver_multistep, scheduling_euler_ancestral_discrete
from safetensors.torch import load_file, save_file

PIPELINES = Path("test/fixtures/pipelines")
OUT = Path("test/fixtures/sampling")
# sardine's sampler names (framework/declaration/generation.ts, schedulerClasses) and the classes they are.
SCHEDULERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "euler": EulerDiscreteScheduler,
              "euler_ancestral": EulerAncestralDiscreteScheduler, "heun": HeunDiscreteScheduler,
              "dpmsolver_multistep": DPMSolverMultistepScheduler, "unipc_multistep": UniPCMultistepScheduler}
# The modules whose step() draws noise with randn_tensor.
NOISY_MODULES = [scheduling_ddpm, scheduling_ddim, scheduling_euler_ancestral_discrete, scheduling_dpmsolver_multistep]
MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF


class SardineNoise:
    """sardine's Gaussian stream: xoshiro128** seeded by SplitMix64(seed · 2^32 + stream), Box–Muller pairs."""

    def __init__(self, seed: int, stream: int) -> None:
        x = (seed << 32) | stream
        words = []
        for _ in range(2):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            z ^= z >> 31
            words += [z >> 32, z & MASK32]
        self.s = words
        self.spare: float | None = None

    def _next_uint32(self) -> int:
        s0, s1, s2, s3 = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & MASK32  # noqa: E731
        result = (rotl((s1 * 5) & MASK32, 7) * 9) & MASK32
        t = (s1 << 9) & MASK32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result

    def _uniform(self) -> float:
        a = self._next_uint32() >> 5
        b = self._next_uint32() >> 6
        return (a * 67108864 + b) / 9007199254740992

    def values(self, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.float32)
        for i in range(count):
            if self.spare is not None:
                out[i], self.spare = self.spare, None
                continue
            radius = math.sqrt(-2 * math.log(1 - self._uniform()))
            angle = 2 * math.pi * self._uniform()
            out[i] = radius * math.cos(angle)
            self.spare = np.float32(radius * math.sin(angle))
        return out

    def normal(self, shape) -> torch.Tensor:
        shape = tuple(int(d) for d in shape)
        return torch.from_numpy(self.values(int(np.prod(shape))).reshape(shape))


@contextmanager
def step_noise_from(stream: SardineNoise):
    """The schedulers' stochastic steps draw from `stream` instead of torch's generator."""
    originals = [module.randn_tensor for module in NOISY_MODULES]
    draw = lambda shape, **_: stream.normal(shape)  # noqa: E731
    for module in NOISY_MODULES:
        module.randn_tensor = draw
    try:
        yield
    finally:
        for module, original in zip(NOISY_MODULES, originals):
            module.randn_tensor = original


class FinalLatents:
    """callback_on_step_end that keeps the latents after the last step."""

    def __init__(self) -> None:
        self.latents: torch.Tensor | None = None

    def __call__(self, pipe, step, timestep, kwargs):
        self.latents = kwargs["latents"].clone()
        return kwargs


SD_CONFIG = json.loads((PIPELINES / "sd1-tiny/scheduler/scheduler_config.json").read_text())

# (name, sampler, config overrides on the SD-1-like pipeline's PNDM config, steps, eta, seed)
SCHEDULER_CASES = [
    ("ddpm-sd", "ddpm", {}, 3, 0.0, 21),
    ("ddpm-linear-v-trailing-large", "ddpm", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
                                              "prediction_type": "v_prediction", "timestep_spacing": "trailing",
                                              "variance_type": "fixed_large", "clip_sample": False}, 4, 0.0, 22),
    ("ddpm-cosine-linspace", "ddpm", {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace",
                                      "clip_sample_range": 2.0}, 7, 0.0, 23),
    ("ddim-sd", "ddim", {}, 3, 0.0, 31),
    ("ddim-linear-v-trailing-eta1", "ddim", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
                                             "prediction_type": "v_prediction", "timestep_spacing": "trailing",
                                             "clip_sample": False}, 4, 1.0, 32),
    ("ddim-cosine-linspace-eta03", "ddim", {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace",
                                            "set_alpha_to_one": True}, 7, 0.3, 36),
    ("ddim-zero-snr-v-eta05", "ddim", {"prediction_type": "v_prediction", "timestep_spacing": "trailing",
                                       "rescale_betas_zero_snr": True, "clip_sample": False}, 3, 0.5, 34),
    ("euler-sd", "euler", {}, 5, 0.0, 41),
    ("euler-linear-v-trailing", "euler", {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
                                          "prediction_type": "v_prediction", "timestep_spacing": "trailing"}, 4, 0.0, 42),
    ("euler-cosine-linspace-sigma-min", "euler", {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace",
                                                  "final_sigmas_type": "sigma_min"}, 7, 0.0, 43),
    # Leading spacing: from t = 999 (σ = 4096 with zero terminal SNR) the reference's own float32 steps cancel
    # numbers of size 4096 down to size 1, so results are only defined to ~2.4e-4 and not comparable at 1e-4.
    ("euler-zero-snr-v", "euler", {"prediction_type": "v_prediction", "timestep_spacing": "leading",
                                   "rescale_betas_zero_snr": True}, 3, 0.0, 44),
    ("euler-karras", "euler", {"use_karras_sigmas": True}, 5, 0.0, 45),
    ("euler-exponential-v-trailing", "euler", {"use_exponential_sigmas": True, "prediction_type": "v_prediction",
                                               "timestep_spacing": "trailing"}, 4, 0.0, 46),
    ("euler_ancestral-sd", "euler_ancestral", {}, 5, 0.0, 51),
    ("euler_ancestral-linear-v-trailing", "euler_ancestral", {"beta_schedule": "linear", "beta_start": 0.0001,
                                                              "beta_end": 0.02, "prediction_type": "v_prediction",
                                                              "timestep_spacing": "trailing"}, 4, 0.0, 52),
    ("heun-sd", "heun", {}, 3, 0.0, 61),
    ("heun-karras-v-clip", "heun", {"use_karras_sigmas": True, "prediction_type": "v_prediction",
                                    "clip_sample": True, "clip_sample_range": 2.0}, 3, 0.0, 62),
    ("heun-exponential-leading", "heun", {"use_exponential_sigmas": True, "timestep_spacing": "leading"}, 3, 0.0, 63),
    ("dpmsolver-2m-sd", "dpmsolver_multistep", {}, 5, 0.0, 71),
    ("dpmsolver-2m-karras", "dpmsolver_multistep", {"use_karras_sigmas": True}, 6, 0.0, 72),
    ("dpmsolver-2m-sde", "dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++"}, 5, 0.0, 73),
    ("dpmsolver-3m-heun-v-trailing", "dpmsolver_multistep", {"solver_order": 3, "solver_type": "heun",
                                                             "prediction_type": "v_prediction",
                                                             "timestep_spacing": "trailing"}, 6, 0.0, 74),
    ("dpmsolver-3m-sde-heun-exponential", "dpmsolver_multistep", {"solver_order": 3, "solver_type": "heun",
                                                                  "algorithm_type": "sde-dpmsolver++",
                                                                  "use_exponential_sigmas": True}, 6, 0.0, 75),
    ("dpmsolver-2m-sde-midpoint-3", "dpmsolver_multistep", {"solver_order": 3, "algorithm_type": "sde-dpmsolver++",
                                                            "lower_order_final": False}, 16, 0.0, 79),
    ("dpmsolver-leading-sigma-min", "dpmsolver_multistep", {"timestep_spacing": "leading", "final_sigmas_type": "sigma_min",
                                                            "euler_at_final": True}, 5, 0.0, 76),
    ("dpmsolver-cosine-clipped", "dpmsolver_multistep", {"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1},
     5, 0.0, 77),
    ("dpmsolver-1-zero-snr-v", "dpmsolver_multistep", {"solver_order": 1, "prediction_type": "v_prediction",
                                                       "timestep_spacing": "trailing", "rescale_betas_zero_snr": True,
                                                       "final_sigmas_type": "zero"}, 3, 0.0, 78),
    ("unipc-sd", "unipc_multistep", {}, 5, 0.0, 81),
    ("unipc-karras", "unipc_multistep", {"use_karras_sigmas": True}, 6, 0.0, 82),
    # bh1 ends in NaN at σ = 0 (B(h) = h = -inf times a zero correction), so sardine refuses it with "zero".
    ("unipc-bh1-sigma-min", "unipc_multistep", {"solver_type": "bh1", "final_sigmas_type": "sigma_min"}, 5, 0.0, 86),
    ("unipc-3-v-trailing", "unipc_multistep", {"solver_order": 3, "prediction_type": "v_prediction",
                                               "timestep_spacing": "trailing"}, 6, 0.0, 83),
    ("unipc-noise-prediction-exponential", "unipc_multistep", {"predict_x0": False, "disable_corrector": [1],
                                                               "use_exponential_sigmas": True,
                                                               "final_sigmas_type": "sigma_min"}, 5, 0.0, 84),
    ("unipc-3-leading-no-lower-final", "unipc_multistep", {"solver_order": 3, "timestep_spacing": "leading",
                                                           "lower_order_final": False,
                                                           "final_sigmas_type": "sigma_min"}, 5, 0.0, 85),
]

# Pipeline cases: prompts are as declared ({token} replaced by <SAR> where a token is given).
PIPELINE_CASES = [
    {"name": "sd1-ddpm", "pipeline": "sd1-tiny", "sampler": "ddpm", "steps": 3, "eta": 0.0, "guidance": 2.0,
     "prompt": "a sar image of a harbour, 3 ships & a breakwater!", "seed": 13, "replicate": 0, "resolution": 16},
    {"name": "sd1-ddim", "pipeline": "sd1-tiny", "sampler": "ddim", "steps": 3, "eta": 0.0, "guidance": 2.0,
     "prompt": "an airport runway with parked aircraft", "seed": 5, "replicate": 0, "resolution": 16},
    {"name": "sd1-ddim-eta", "pipeline": "sd1-tiny", "sampler": "ddim", "steps": 3, "eta": 0.8, "guidance": 2.0,
     "prompt": "a river crossing a forest", "seed": 6, "replicate": 1, "resolution": 16},
    {"name": "sd1-euler-token", "pipeline": "sd1-tiny", "sampler": "euler", "steps": 6, "eta": 0.0, "guidance": 7.5,
     "prompt": "{token} flooded fields near the river", "token": "<SAR>", "seed": 7, "replicate": 0, "resolution": 16},
    {"name": "sdxl-euler-micro", "pipeline": "sdxl-tiny", "sampler": "euler", "steps": 5, "eta": 0.0, "guidance": 5.0,
     "prompt": "a bridge over a canal, double bounce lines", "seed": 11, "replicate": 0, "resolution": 32,
     "original_size": [64, 48], "crops_coords_top_left": [4, 8], "target_size": [32, 32]},
    {"name": "sdxl-ddpm-unguided", "pipeline": "sdxl-tiny", "sampler": "ddpm", "steps": 3, "eta": 0.0, "guidance": 1.0,
     "prompt": "snow covered mountains", "seed": 12, "replicate": 0, "resolution": 32},
    {"name": "sd1-dpmsolver-karras-negative", "pipeline": "sd1-tiny", "sampler": "dpmsolver_multistep", "steps": 5,
     "eta": 0.0, "guidance": 3.0, "scheduler_config": {"use_karras_sigmas": True},
     "prompt": "a container port with cranes", "negative_prompt": "blurry, optical colours", "seed": 14,
     "replicate": 0, "resolution": 16},
    {"name": "sd1-unipc-negative-empty", "pipeline": "sd1-tiny", "sampler": "unipc_multistep", "steps": 4, "eta": 0.0,
     "guidance": 2.5, "prompt": "a dam across a valley", "negative_prompt": "", "seed": 15, "replicate": 1,
     "resolution": 16},
    {"name": "sdxl-euler-ancestral-negative", "pipeline": "sdxl-tiny", "sampler": "euler_ancestral", "steps": 4,
     "eta": 0.0, "guidance": 4.0, "prompt": "an oil rig at sea", "negative_prompt": "speckle-free, smooth",
     "seed": 16, "replicate": 0, "resolution": 32},
    # An explicit "" is encoded, not zeroed: force_zeros_for_empty_prompt applies only to negative_prompt=None.
    {"name": "sdxl-heun-negative-empty", "pipeline": "sdxl-tiny", "sampler": "heun", "steps": 3, "eta": 0.0,
     "guidance": 3.0, "prompt": "terraced fields on a hillside", "negative_prompt": "", "seed": 17, "replicate": 0,
     "resolution": 32},
    {"name": "sdxl-dpmsolver-sde-default-negative", "pipeline": "sdxl-tiny", "sampler": "dpmsolver_multistep",
     "steps": 4, "eta": 0.0, "guidance": 3.0, "scheduler_config": {"algorithm_type": "sde-dpmsolver++"},
     "prompt": "a suspension bridge at night", "seed": 18, "replicate": 0, "resolution": 32},
]


def load(name: str, pipeline_class):
    return pipeline_class.from_pretrained(PIPELINES / name, torch_dtype=torch.float32)


def add_token(pipe, reference: dict[str, torch.Tensor], token: str) -> None:
    """Adds the token to every tokenizer with the embedding row tools/make_tiny_pipelines.py gave it."""
    pairs = [("text_encoder", pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs.append(("text_encoder_2", pipe.tokenizer_2, pipe.text_encoder_2))
    for prefix, tokenizer, encoder in pairs:
        tokenizer.add_tokens([token])
        encoder.resize_token_embeddings(len(tokenizer))
        with torch.no_grad():
            encoder.get_input_embeddings().weight[-1:] = reference[f"{prefix}.added_token_embedding"]


# A case is kept only if diffusers' own result is stable: a 1e-6 change of the initial latents may move the final
# latents by at most CONDITIONING relative to their scale. The random-weight UNets are chaotic under strong guidance
# and many steps; sardine's kernels differ from torch's by ~1e-6 per UNet call and its deviation from a golden came
# out at 0.3-0.7 x this sensitivity, so 2e-5 keeps the comparison well inside the 1e-4 acceptance.
CONDITIONING = 2e-5
PERTURBATION = 1e-6


def stable_run(name: str, run, initial: torch.Tensor):
    """run(initial latents) -> (final latents, image or None), checked for conditioning as described above."""
    result = run(initial)
    if not torch.isfinite(result[0]).all():
        raise SystemExit(f"{name}: diffusers' result is not finite")
    nudge = torch.randn(initial.shape, generator=torch.Generator().manual_seed(0)) * PERTURBATION
    moved = (run(initial + nudge)[0] - result[0]).abs().max().item() / result[0].abs().max().item()
    if moved > CONDITIONING:
        raise SystemExit(f"{name}: a {PERTURBATION} change of the initial latents moves the result by {moved:.2e} "
                         f"(> {CONDITIONING}); choose fewer steps or a lower guidance scale")
    print(f"{name}: conditioning {moved:.1e}")
    return result


def scheduler_cases(out: dict[str, torch.Tensor]) -> list[dict]:
    pipe = load("sd1-tiny", StableDiffusionPipeline)
    embeds = load_file(PIPELINES / "sd1-tiny.reference.safetensors")["prompt.prompt_embeds"][:1].contiguous()
    out["scheduler.prompt_embeds"] = embeds
    cases = []
    for name, sampler, overrides, steps, eta, seed in SCHEDULER_CASES:
        config = {**SD_CONFIG, **overrides}

        def run(initial: torch.Tensor):
            pipe.scheduler = SCHEDULERS[sampler].from_config(config)
            stream = SardineNoise(seed, 0)
            stream.normal(initial.shape)  # the stream's first draw is the initial noise
            with step_noise_from(stream), torch.no_grad():
                latents = pipe(prompt_embeds=embeds, latents=initial, num_inference_steps=steps, guidance_scale=1.0,
                               eta=eta, height=16, width=16, output_type="latent").images
            return latents, None

        latents, _ = stable_run(name, run, SardineNoise(seed, 0).normal((1, 4, 8, 8)))
        out[f"{name}.latents"] = latents.contiguous()
        cases.append({"name": name, "sampler": sampler, "config": config, "steps": steps, "eta": eta, "seed": seed})
    return cases


def pipeline_cases(out: dict[str, torch.Tensor]) -> list[dict]:
    cases = []
    for case in PIPELINE_CASES:
        name = case["pipeline"]
        sdxl = name == "sdxl-tiny"
        pipe = load(name, StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline)
        prompt = case["prompt"]
        if "token" in case:
            add_token(pipe, load_file(PIPELINES / f"{name}.reference.safetensors"), case["token"])
            prompt = prompt.replace("{token}", case["token"])
        side = case["resolution"]
        latent_side = side // pipe.vae_scale_factor
        shape = (1, pipe.unet.config.in_channels, latent_side, latent_side)
        extra = {k: tuple(case[k]) for k in ("original_size", "crops_coords_top_left", "target_size") if k in case}

        negative = {"negative_prompt": case["negative_prompt"]} if "negative_prompt" in case else {}

        def run(initial: torch.Tensor):
            pipe.scheduler = SCHEDULERS[case["sampler"]].from_config(pipe.scheduler.config, **case.get("scheduler_config", {}))
            stream = SardineNoise(case["seed"], case["replicate"])
            stream.normal(shape)  # the stream's first draw is the initial noise
            final = FinalLatents()
            with step_noise_from(stream), torch.no_grad():
                image = pipe(prompt=prompt, latents=initial, num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                             eta=case["eta"], height=side, width=side, output_type="np", callback_on_step_end=final,
                             **negative, **extra).images
            return final.latents, image

        latents, image = stable_run(case["name"], run, SardineNoise(case["seed"], case["replicate"]).normal(shape))
        out[f"{case['name']}.latents"] = latents.contiguous()
        out[f"{case['name']}.image"] = torch.from_numpy(image[0].astype(np.float64).mean(-1).astype(np.float32)).contiguous()
        cases.append(case)
    return cases


# The sigma respacings each class reads (EulerAncestralDiscreteScheduler has none).
RESPACINGS = {"euler": ["karras", "exponential"], "heun": ["karras", "exponential"],
              "dpmsolver_multistep": ["karras", "exponential"], "unipc_multistep": ["karras", "exponential"]}


def spacing_goldens() -> list[dict]:
    """set_timesteps of each class for each spacing, sigma respacing and a few step counts (the sigma-space classes:
    sigmas and init_noise_sigma too), on the SD-1-like pipeline's config (`baseConfig`) with timestep_spacing,
    use_karras_sigmas / use_exponential_sigmas and rescale_betas_zero_snr changed."""
    rows = []
    for sampler, cls in SCHEDULERS.items():
        for spacing in ["linspace", "leading", "trailing"]:
            for respacing in [None, *RESPACINGS.get(sampler, [])]:
                for zero_snr in [False, True] if sampler == "euler" and respacing is None else [False]:
                    config = {**SD_CONFIG, "timestep_spacing": spacing, "rescale_betas_zero_snr": zero_snr}
                    if respacing is not None:
                        config[f"use_{respacing}_sigmas"] = True
                    for steps in [1, 2, 3, 7, 10, 30, 50]:
                        scheduler = cls.from_config(config)
                        scheduler.set_timesteps(steps)
                        row = {"sampler": sampler, "spacing": spacing, "sigmaSpacing": respacing or "timesteps",
                               "zeroSnr": zero_snr, "steps": steps, "timesteps": scheduler.timesteps.tolist()}
                        if sampler not in ("ddpm", "ddim"):
                            row["sigmas"] = scheduler.sigmas.tolist()
                            row["initNoiseSigma"] = float(scheduler.init_noise_sigma)
                        rows.append(row)
    return rows


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    out: dict[str, torch.Tensor] = {}
    streams = [(0, 0), (1, 0), (0, 1), (4294967295, 4294967295)]
    for seed, stream in streams:
        out[f"noise.{seed}.{stream}"] = torch.from_numpy(SardineNoise(seed, stream).values(1001))
    goldens = {
        "baseConfig": SD_CONFIG,
        "noiseStreams": [{"seed": s, "stream": t, "tensor": f"noise.{s}.{t}"} for s, t in streams],
        "spacing": spacing_goldens(),
        "schedulerCases": scheduler_cases(out),
        "pipelineCases": pipeline_cases(out),
    }
    # One record per line keeps the file short and its diffs readable.
    lines = ",\n".join(f" {json.dumps(key)}: [\n  " + ",\n  ".join(json.dumps(row) for row in rows) + "\n ]"
                       for key, rows in goldens.items() if isinstance(rows, list))
    base = json.dumps(goldens["baseConfig"])
    (OUT / "goldens.json").write_text(f'{{\n "baseConfig": {base},\n{lines}\n}}\n')
    save_file(out, OUT / "goldens.safetensors")


if __name__ == "__main__":
    main()
