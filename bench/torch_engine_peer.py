"""The bare peer of the torch engine (bench/engines.ts): a plain diffusers + PEFT training loop on the same
model, batch and precision as the engine's train step — noisy latents at random timesteps, the UNet on the
text conditioning, MSE against the noise, backward, global-norm clipping, AdamW — with nothing of sardine's
(no declaration, no files, no draws of its own, no metrics). Each step is timed whole, its random inputs
included, as the engine's steps are. Like for like with the demo strategies that bench/engines.ts declares:
the LoRA targets are the engine's defaults for the UNet, the text conditioning has the encoder's shape (as the
engine's text cache), the clipping norm is 1, and AdamW has no weight decay (none is declared; torch's default
0.01 would add a multiply per parameter to every step).

Usage: python bench/torch_engine_peer.py <pipeline folder> <full|lora> <steps> <batch> <latent side> <precision>
Prints one JSON object: {"msPerStep": [...]} (the steps after two warm-up steps).
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel

WARM_UP = 2
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def main() -> None:
    folder, treatment, steps, batch, side, precision = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    device = "cuda" if torch.cuda.is_available() and os.environ.get("SARDINE_TORCH_DEVICE") != "cpu" else "cpu"
    if os.environ.get("SARDINE_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["SARDINE_TORCH_THREADS"]))
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet").to(device)
    encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    tokens, width = encoder.config.max_position_embeddings, encoder.config.hidden_size
    schedule = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
    if treatment == "lora":
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    unet.train()
    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=0.0)
    channels = unet.config.in_channels
    times = []
    for step in range(WARM_UP + steps):
        start = time.perf_counter()
        latents = torch.randn(batch, channels, side, side, device=device)
        noise = torch.randn(batch, channels, side, side, device=device)
        timesteps = torch.randint(0, schedule.config.num_train_timesteps, (batch,), device=device)
        context = torch.randn(batch, tokens, width, device=device)
        with torch.autocast(device_type=device, dtype=DTYPES[precision], enabled=precision != "fp32"):
            prediction = unet(schedule.add_noise(latents, noise, timesteps), timesteps, encoder_hidden_states=context).sample
            loss = F.mse_loss(prediction.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())
        if step >= WARM_UP:
            times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"msPerStep": times}))


if __name__ == "__main__":
    main()
