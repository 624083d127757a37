"""The real consumers of a torch-trained model's exports (test/torch/exports.test.ts): diffusers loads the
merged pipeline folder (`DiffusionPipeline.from_pretrained`), and the base with the kohya or PEFT LoRA file
(`load_lora_weights`) plus the textual-inversion file (`load_textual_inversion`); each samples the request's
prompts with sardine's noise (Euler, so the initial latents are the only draw) and the amplitudes
(the [0, 1] image's channel mean, as sardine stores samples) go to the safetensors file argv[1].
Request on stdin: {base, merged, kohya, peft, embedding, token, prompts: [spelled-out], seeds, steps, guidance, side}."""

import json
import sys

import numpy as np
import torch
from diffusers import DiffusionPipeline, EulerDiscreteScheduler
from safetensors.numpy import save_file

from sardine_torch.draws import GaussianStream

request = json.loads(sys.stdin.read())
out = {}


def sample(name, pipe):
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    latent_side = request["side"] // pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, latent_side, latent_side)
    for p, prompt in enumerate(request["prompts"]):
        for seed in request["seeds"]:
            latents = torch.from_numpy(GaussianStream(seed, 0).values(int(np.prod(shape))).reshape(shape))
            with torch.no_grad():
                image = pipe(prompt=prompt, latents=latents, num_inference_steps=request["steps"], guidance_scale=request["guidance"],
                             height=request["side"], width=request["side"], output_type="np").images[0]
            out[f"{name}.p{p}.s{seed}"] = image.astype(np.float64).mean(-1).astype(np.float32)


sample("diffusers", DiffusionPipeline.from_pretrained(request["merged"], torch_dtype=torch.float32))
for kind in ("kohya", "peft"):
    pipe = DiffusionPipeline.from_pretrained(request["base"], torch_dtype=torch.float32)
    pipe.load_lora_weights(request[kind])
    pipe.load_textual_inversion(request["embedding"], token=request["token"])
    sample(kind, pipe)
save_file(out, sys.argv[1])
