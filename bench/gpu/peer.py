"""The bare peer of sardine's side of the GPU bench: the paper's hybrid (full UNet, LoRA on both text encoders, a
learned token) trained as diffusers' example scripts do it (train_text_to_image_sdxl.py, train_text_to_image_lora_sdxl.py,
textual_inversion_sdxl.py), with diffusers, PEFT and transformers alone — nothing of sardine's:

  the UNet in fp32 (the master weights autocast reads), the text encoders in the precision with PEFT LoRA
  (PEFT's inject_adapter_in_model, what transformers' add_adapter calls; cast_training_params: the adapters in
  fp32), the token added to both tokenizers and embedding tables (resize_token_embeddings, the init word's
  mean; the whole table takes gradients and every other row is restored after each step, as
  textual_inversion_sdxl.py does), SDXL conditioning (penultimate hidden states of
  both encoders, the second's pooled projection, the time ids), noise offset, Min-SNR-γ weighting
  (compute_snr), global-norm clipping, AdamW with the same groups, rates and weight decay, bf16 autocast,
  gradient checkpointing as declared. Latents are drawn per step on the device (what the latent cache holds).

  python bench/gpu/peer.py <spec.json> <result.json>     (bench.py writes the spec)
"""

from __future__ import annotations

import os
from typing import Any

import torch

from measure import CAPTIONS, StepClock, chosen_device, run_side

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def enable_checkpointing(encoder: Any) -> None:
    # transformers 5 renamed it; the old name warns.
    (getattr(encoder, "activation_checkpointing_enable", None) or encoder.gradient_checkpointing_enable)()


def main(spec: dict[str, Any]) -> dict[str, Any]:
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import cast_training_params, compute_snr
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if os.environ.get("SARDINE_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["SARDINE_TORCH_THREADS"]))
    device = chosen_device()
    torch.manual_seed(0)
    base, train = spec["base"], spec["train"]
    components, token = spec["adaptation"]["components"], spec["adaptation"]["token"]
    dtype = DTYPES[train["precision"]]
    batch, side, checkpointing = train["batchSize"], spec["latentSide"], train["gradientCheckpointing"]

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    tokenizers = [CLIPTokenizer.from_pretrained(base, subfolder=s) for s in ("tokenizer", "tokenizer_2")]
    encoders = [
        CLIPTextModel.from_pretrained(base, subfolder="text_encoder", torch_dtype=dtype),
        CLIPTextModelWithProjection.from_pretrained(base, subfolder="text_encoder_2", torch_dtype=dtype),
    ]
    spelling = token["spellings"][0]
    restore = []
    for name, tokenizer, encoder in zip(("text_encoder", "text_encoder_2"), tokenizers, encoders):
        lora = components[name]
        tokenizer.add_tokens([spelling])
        new_id = tokenizer.convert_tokens_to_ids(spelling)
        init_ids = tokenizer.encode(token["init"], add_special_tokens=False)
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        encoder.requires_grad_(False)
        inject_adapter_in_model(LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], init_lora_weights="gaussian", target_modules=lora["targets"]), encoder)
        table = encoder.get_input_embeddings().float()
        with torch.no_grad():
            table.weight[new_id] = table.weight[init_ids].mean(dim=0)
        table.weight.requires_grad_(True)
        # The table trains in fp32; what it gives the encoder is in the encoder's precision (as sardine's added rows).
        table.register_forward_hook(lambda _module, _inputs, output: output.to(dtype))
        keep = torch.ones(table.weight.shape[0], dtype=torch.bool)
        keep[new_id] = False
        restore.append((table, keep.to(device), table.weight.detach().clone().to(device)))
        cast_training_params(encoder, dtype=torch.float32)
        encoder.to(device).train()
        if checkpointing:
            enable_checkpointing(encoder)
    unet.to(device).train()
    if checkpointing:
        unet.enable_gradient_checkpointing()

    unet_treatment = components["unet"]
    tables = [t for t, _, _ in restore]
    adapters = [p for e in encoders for n, p in e.named_parameters() if p.requires_grad and "lora_" in n]
    groups = [
        {"params": list(unet.parameters()), "lr": unet_treatment["lr"], "weight_decay": unet_treatment["weightDecay"]},
        {"params": adapters, "lr": components["text_encoder"]["lr"], "weight_decay": 0.0},
        {"params": [t.weight for t in tables], "lr": token["lr"], "weight_decay": 0.0},
    ]
    parameters = [p for g in groups for p in g["params"]]
    declared = train["optimizer"]
    optimizer = torch.optim.AdamW(groups, betas=(declared["beta1"], declared["beta2"]), eps=declared["epsilon"])

    clock = StepClock(device, spec["warmUp"], spec["steps"])
    channels, resolution = unet.config.in_channels, spec["resolution"]
    time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch, dtype=torch.float32, device=device)
    loss_value = None
    for step in range(clock.total):
        latents = torch.randn(batch, channels, side, side, device=device)
        noise = torch.randn(batch, channels, side, side, device=device)
        noise = noise + train["noiseOffset"] * torch.randn(batch, channels, 1, 1, device=device)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), device=device)
        captions = [CAPTIONS[(step * batch + i) % len(CAPTIONS)] for i in range(batch)]
        ids = [t(captions, padding="max_length", max_length=t.model_max_length, truncation=True, return_tensors="pt").input_ids.to(device) for t in tokenizers]
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32):
            states = []
            for encoder, encoder_ids in zip(encoders, ids):
                out = encoder(encoder_ids, output_hidden_states=True)
                states.append(out.hidden_states[-2])
            pooled = out[0]
            noisy = scheduler.add_noise(latents, noise, timesteps)
            prediction = unet(noisy, timesteps, torch.cat(states, dim=-1), added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
            per_row = ((prediction.float() - noise.float()) ** 2).mean(dim=(1, 2, 3))
            snr = compute_snr(scheduler, timesteps)
            loss = (per_row * torch.clamp(snr, max=train["minSnrGamma"]) / snr).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, train["maxGradNorm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for table, keep, original in restore:
                table.weight[keep] = original[keep]
        loss_value = float(loss.detach())
        if clock.ended(step + 1):
            break
    return clock.result(loss_value)


if __name__ == "__main__":
    run_side(main)
