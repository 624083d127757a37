"""What one setting costs the demo's LoRA train step on torch (issue 16's overhead): the bare loop of
bench/torch_engine_peer.py on two identical LoRA UNets, one with the setting, their steps alternating in one
process and timed in process CPU time, so a change of the machine's load touches both alike. The ratio is the
median of the steps' paired ratios (setting / without).

The settings are the ones the torch engine differs in, or differed in, from the bare loop:
  strided-lora-a    LoRA's A stored as a transposed view (how sardine's A, drawn in the tfjs layout, was
                    stored before adaptation.py made it contiguous)
  deterministic     torch.use_deterministic_algorithms(True) without the NaN fill, as environment.py sets it

Usage: python bench/torch_step_toggles.py <pipeline folder> <steps> [setting…]   (SARDINE_TORCH_THREADS: threads)
Prints one JSON line per setting, with the load average before and after.
"""

import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from peft import LoraConfig

BATCH, SIDE, TOKENS, WARM_UP = 16, 8, 77, 2


def lora_unet(folder: str, strided_a: bool) -> UNet2DConditionModel:
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    if strided_a:
        for name, parameter in unet.named_parameters():
            if ".lora_A." in name:
                parameter.data = parameter.data.t().contiguous().t()
    unet.train()
    return unet


def stepper(unet: UNet2DConditionModel, deterministic: bool):
    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=0.0)
    channels, width = unet.config.in_channels, unet.config.cross_attention_dim

    def step(seed: int) -> float:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        draws = torch.Generator().manual_seed(seed)
        latents = torch.randn(BATCH, channels, SIDE, SIDE, generator=draws)
        context = torch.randn(BATCH, TOKENS, width, generator=draws)
        timesteps = torch.randint(0, 1000, (BATCH,), generator=draws)
        started = time.process_time()
        loss = F.mse_loss(unet(latents, timesteps, encoder_hidden_states=context).sample, latents)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())
        return time.process_time() - started

    return step


def main() -> None:
    folder, steps = sys.argv[1], int(sys.argv[2])
    settings = sys.argv[3:] or ["strided-lora-a", "deterministic"]
    if os.environ.get("SARDINE_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["SARDINE_TORCH_THREADS"]))
    torch.utils.deterministic.fill_uninitialized_memory = False
    for setting in settings:
        if setting not in ("strided-lora-a", "deterministic"):
            raise SystemExit(f"unknown setting {setting!r}: strided-lora-a or deterministic")
        load_before = os.getloadavg()
        without = stepper(lora_unet(folder, False), False)
        with_it = stepper(lora_unet(folder, setting == "strided-lora-a"), setting == "deterministic")
        times: dict[str, list[float]] = {"with": [], "without": []}
        for i in range(WARM_UP + steps):
            # Both see the same inputs; the order alternates so neither always runs first.
            pair = [("with", with_it), ("without", without)]
            for name, step in pair if i % 2 else pair[::-1]:
                seconds = step(i)
                if i >= WARM_UP:
                    times[name].append(seconds)
        ratios = [a / b for a, b in zip(times["with"], times["without"])]
        print(json.dumps({
            "setting": setting,
            "steps": steps,
            "threads": torch.get_num_threads(),
            "cpuMsWith": round(1000 * statistics.median(times["with"]), 2),
            "cpuMsWithout": round(1000 * statistics.median(times["without"]), 2),
            "ratio": round(statistics.median(ratios), 4),
            "loadAverage": {"before": [round(l, 1) for l in load_before], "after": [round(l, 1) for l in os.getloadavg()]},
        }), flush=True)


if __name__ == "__main__":
    main()
