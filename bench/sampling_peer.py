"""diffusers peer for bench/sampling.ts: builds the tiny random-weight Stable Diffusion pipeline both sides sample
from, then times StableDiffusionPipeline on it (PyTorch, 2 threads).

The pipeline is the tiny one of diffusers' own tests and issue 7's training bench: UNet2DConditionModel with
block_out_channels (32, 64), two layers per block, cross-attention dim 32, 32 x 32 latents; an AutoencoderKL with
block_out_channels (32, 64) (64 x 64 images); a 5-layer CLIP text encoder of width 32; the fixture tokenizer; an
SD-like EulerDiscreteScheduler. Each sample starts from sardine's Gaussian stream for its seed (the Python twin in
tools/make_sampler_goldens.py), so both sides compute the same images; the mean of the first one is printed to
show it.

Usage (run by bench/sampling.ts): .venv/bin/python bench/sampling_peer.py <folder> <prompt> <steps> <guidance> <samples>
Prints one JSON object: {"msPerSample": [...], "firstMean": ...}.
"""

import json
import shutil
import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from make_sampler_goldens import SardineNoise  # noqa: E402

TOKENIZER = Path(__file__).resolve().parent.parent / "test/fixtures/pipelines/sd1-tiny/tokenizer"


def build(folder: Path) -> None:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"), up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=5, pad_token_id=1, vocab_size=1000,
    ))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(TOKENIZER), unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    # The published tokenizer layout (vocab.json + merges.txt), which sardine reads.
    shutil.rmtree(folder / "tokenizer")
    shutil.copytree(TOKENIZER, folder / "tokenizer")


def main() -> None:
    folder, prompt, steps, guidance, samples = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(2)
    build(folder)
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)

    def sample(latents: torch.Tensor):
        with torch.no_grad():
            return pipe(prompt=prompt, latents=latents, num_inference_steps=steps, guidance_scale=guidance,
                        height=64, width=64, output_type="np").images[0]

    noise = lambda seed: SardineNoise(seed, 0).normal((1, 4, 32, 32))  # noqa: E731
    sample(noise(1000))  # warm-up
    times, first = [], None
    for seed in range(samples):
        latents = noise(seed)
        start = time.perf_counter()
        image = sample(latents)
        times.append((time.perf_counter() - start) * 1000)
        if first is None:
            first = float(image.mean())
    print(json.dumps({"msPerSample": times, "firstMean": first}))


if __name__ == "__main__":
    main()
