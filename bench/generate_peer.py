"""diffusers peer for bench/generate.ts: StableDiffusionPipeline on the shipped demo base (PyTorch, 2 threads),
each sampler as the diffusers class sardine's sampler name stands for, from sardine's noise for each seed.

Usage (run by bench/generate.ts): .venv/bin/python bench/generate_peer.py <pipeline> <prompt> <steps> <guidance> <samples> <cases JSON>
<cases JSON> is a list of {"name", "sampler", "schedulerConfig"}. Prints one JSON object: name -> {"msPerSample": [...], "firstMean": ...}.
"""

import json
import sys
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from make_sampler_goldens import SCHEDULERS, SardineNoise, step_noise_from  # noqa: E402


def main() -> None:
    folder, prompt, steps, guidance, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    cases = json.loads(sys.argv[6])
    torch.set_num_threads(2)
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, pipe.unet.config.sample_size, pipe.unet.config.sample_size)
    results = {}
    for case in cases:
        pipe.scheduler = SCHEDULERS[case["sampler"]].from_config(pipe.scheduler.config, **case["schedulerConfig"])
        times, first_mean = [], 0.0

        def sample(seed: int):
            stream = SardineNoise(seed, 0)
            latents = stream.normal(shape)
            with step_noise_from(stream), torch.no_grad():
                return pipe(prompt=prompt, latents=latents, num_inference_steps=steps, guidance_scale=guidance,
                            height=side, width=side, output_type="np").images[0]

        sample(1000)  # warm-up
        for seed in range(samples):
            start = time.perf_counter()
            image = sample(seed)
            times.append((time.perf_counter() - start) * 1000)
            if seed == 0:
                first_mean = float(image.mean())
        results[case["name"]] = {"msPerSample": times, "firstMean": first_mean}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
