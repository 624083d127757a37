"""diffusers' ControlNet pipelines as the consumer of sardine's files, run live by
test/controlnet/controlnet-pipeline.test.ts: reads a JSON request on
stdin, loads the pipeline folder with ControlNetModel.from_pretrained(controlnet folder) into
StableDiffusionControlNetPipeline (or its SDXL version), samples each case from sardine's own noise stream (the
initial latents and every stochastic step's noise, as tools/make_sampler_goldens.py does) and writes, per case,
the image as sardine stores it (the mean over RGB of diffusers' [0, 1] output) to <out>/<i>.f32 (raw float32).

Request: {"pipeline", "controlnet", "sdxl", "out", "cases": [{"prompt", "image" (raw little-endian float32, HWC, in
[0, 1]), "imageShape" ([H, W, C]), "sampler", "steps", "guidance", "scale", "guessMode", "seed", "replicate",
"resolution"}]}
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionXLControlNetPipeline

# tools/ is on sys.path: Python puts the script's folder there.
from make_sampler_goldens import SCHEDULERS, SardineNoise, step_noise_from


def main() -> None:
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    controlnet = ControlNetModel.from_pretrained(request["controlnet"], torch_dtype=torch.float32)
    pipeline_class = StableDiffusionXLControlNetPipeline if request["sdxl"] else StableDiffusionControlNetPipeline
    extra = {"add_watermarker": False} if request["sdxl"] else {"safety_checker": None, "requires_safety_checker": False}
    pipe = pipeline_class.from_pretrained(request["pipeline"], controlnet=controlnet, torch_dtype=torch.float32, **extra)
    base_scheduler = pipe.scheduler.config
    out = Path(request["out"])
    for i, case in enumerate(request["cases"]):
        pipe.scheduler = SCHEDULERS[case["sampler"]].from_config(base_scheduler)
        pixels = np.fromfile(case["image"], dtype="<f4").reshape(case["imageShape"])
        image = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        side = case["resolution"]
        shape = (1, pipe.unet.config.in_channels, side // pipe.vae_scale_factor, side // pipe.vae_scale_factor)
        stream = SardineNoise(case["seed"], case["replicate"])
        latents = stream.normal(shape)
        with step_noise_from(stream), torch.no_grad():
            result = pipe(
                prompt=case["prompt"],
                image=image,
                latents=latents,
                num_inference_steps=case["steps"],
                guidance_scale=float(case["guidance"]),
                controlnet_conditioning_scale=float(case["scale"]),
                guess_mode=case["guessMode"],
                height=side,
                width=side,
                output_type="np",
            ).images
        result[0].astype(np.float64).mean(-1).astype("<f4").tofile(out / f"{i}.f32")


if __name__ == "__main__":
    main()
