"""The `train` operation: the declared adaptation of a base trained as the tfjs engine trains it
(adapters/tfjs/training/trainer.ts, training-step.ts), on torch with accelerate:

  per optimiser step: `gradientAccumulation` micro-batches (batches.py), each loss (diffusion and/or VAE,
  losses.py) back-propagated; global-norm clipping; AdamW per group at the scheduled rate (torch.optim.AdamW,
  or bitsandbytes' 8-bit AdamW); the token rows' norm re-projection; the EMA; metrics; a checkpoint every
  `checkpointEvery` steps, at the end, and when asked to stop.
Beyond the tfjs engine: mixed precision (bf16 autocast, fp16 with loss scaling, fp32 master weights),
gradient checkpointing, validation images every `validationEvery` steps. The held-out validation loss
(`validationLoss`) is validation_loss.py's. LoRA dropout masks come from torch's
generator seeded per (seed, step, micro-batch): reproducible and resumable, but not the tfjs engine's masks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import batches, checkpoint, draws, losses, prompts, sharding
from .adaptation import Adapted, adapt, add_lora, train_fully
from .controlnet import COMPONENT as CONTROLNET, initial_controlnet, write_trained_controlnet
from .data_parallel import Ranks, agreed_stop, average_gradients, check_divisible, ranks_of
from .environment import device_name
from .files import PreparedData, read_json
from .pipeline import TextEncoder, encoder_names, frozen, load_text_encoders, load_unet, load_vae, noise_scheduler
from .protocol import Channel, Stopped
from .trained_model import write_model
from .validation import ValidationSampler
from .validation_loss import ValidationLoss, held_out_data, held_out_split

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def learning_rate_factor(schedule: dict[str, Any], step: int, total: int) -> float:
    """learning-rate.ts: linear warm-up from 0, then constant or half a cosine down to 0 at `total`."""
    warmup = schedule["warmupSteps"]
    if step < warmup:
        return step / max(1, warmup)
    if schedule["decay"] == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


def seed_step(seed: int, device: torch.device) -> None:
    """Seeds the generators a micro-batch's random ops (LoRA dropout) draw from: the CPU's and, on CUDA, the
    devices'. torch.manual_seed also queues a lazy seeding of each uninitialised backend (CUDA on a CPU run,
    XPU, MTIA), formatting the caller's stack for each: 80 µs a micro-batch against 1 µs."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    elif device.type != "cpu":
        torch.manual_seed(seed)


def ema_decay(declared: float, optimization_step: int) -> float:
    """exponential-moving-average.ts (diffusers' EMAModel without warm-up)."""
    k = optimization_step - 1
    return 0.0 if k <= 0 else min(declared, (1 + k) / (10 + k))


class Prefetcher:
    """Assembles the next micro-batch on a background thread while the current one computes (when the batch
    needs no model: cached latents or no diffusion objective)."""

    def __init__(self, load: Callable[[batches.Position], batches.MicroBatch], enabled: bool) -> None:
        self.load = load
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") if enabled else None
        self.pending: tuple[batches.Position, Future] | None = None

    def get(self, at: batches.Position, following: batches.Position | None) -> batches.MicroBatch:
        if self.pending is not None and self.pending[0] == at:
            batch = self.pending[1].result()
        else:
            batch = self.load(at)
        self.pending = None
        if self.executor is not None and following is not None:
            self.pending = (following, self.executor.submit(self.load, following))
        return batch

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Session:
    """A train request set up: the models loaded and adapted, the data sources, the objective."""

    request: dict[str, Any]
    accelerator: Any
    ranks: Ranks
    device: torch.device
    models: dict[str, torch.nn.Module]
    encoders: list[TextEncoder]
    adapted: Adapted
    sdxl: bool
    spellings: list[str]
    data: PreparedData
    load: Callable[[batches.Position], batches.MicroBatch]
    loss_of: Callable[[batches.MicroBatch], torch.Tensor]
    # train.validationLoss: the held-out samples and how to measure them; None when not declared.
    validation_loss: ValidationLoss | None
    # The unweighted diffusion loss of a micro-batch (what the validation loss averages).
    diffusion_loss_of: Callable[[batches.MicroBatch], torch.Tensor]
    # The next micro-batch may be assembled on a thread while the current one computes: nothing in it
    # depends on the models (cached latents, or no diffusion objective).
    prefetchable: bool
    # A conditioned experiment's ControlNet (adaptation.controlnet), trained beside the components.
    controlnet: torch.nn.Module | None = None


def open_session(request: dict[str, Any]) -> Session:
    from accelerate import Accelerator

    base: str = request["base"]
    adaptation: dict[str, Any] = request["adaptation"]
    train: dict[str, Any] = request["train"]
    seed: int = train["seed"]
    precision: str = train["precision"]
    device_choice = device_name()
    if precision == "fp16" and not device_choice.startswith("cuda"):
        raise ValueError(f"train.precision: fp16 mixed precision needs a CUDA device (this worker runs on {device_choice}); use bf16 or fp32")
    accelerator = Accelerator(mixed_precision=MIXED_PRECISION[precision], cpu=device_choice == "cpu")
    device = accelerator.device
    weight_dtype = DTYPES[precision]
    ranks = ranks_of(accelerator)
    check_divisible(train["batchSize"], ranks.count)
    if request.get("sharding", "none") == "fsdp":
        sharding.check_shardable(request, ranks.count)

    components: dict[str, dict[str, Any]] = adaptation["components"]
    if ranks.count > 1:
        for name, treatment in components.items():
            if treatment["_tag"] == "lora" and treatment["dropout"] > 0:
                raise ValueError(
                    f"components.{name}.dropout: LoRA dropout masks are drawn per process, so {ranks.count} processes would not "
                    "train as one does; declare dropout 0 or train on one process")
    encoders_in_base = encoder_names(base)
    declared_encoders = [n for n in components if n.startswith("text_encoder")]
    if declared_encoders != encoders_in_base:
        raise ValueError(f"the adaptation names the text encoders {declared_encoders}, the base {base} has {encoders_in_base}")
    token = adaptation.get("token")
    declared_controlnet = adaptation.get("controlnet")
    trains = {name: t["_tag"] != "frozen" for name, t in components.items()}
    diffusion = token is not None or declared_controlnet is not None or any(trains[n] for n in components if n != "vae")
    reconstruction = trains["vae"]
    encoders_train = token is not None or any(trains[n] for n in encoders_in_base)
    latents_dir = request.get("latentsDir") if not reconstruction else None
    text_dir = request.get("textDir") if not encoders_train else None
    if not diffusion and not reconstruction:
        raise ValueError("components: every component is frozen and no token is learned; nothing to train")

    data = PreparedData(request["dataDir"])
    if not data.samples:
        raise ValueError(f"{request['dataDir']}/index.json: holds no training sample")
    declared_validation = train.get("validationLoss")
    fraction = None if declared_validation is None else declared_validation.get("fraction")
    split = None if fraction is None else held_out_split(seed, len(data.samples), fraction, f"{request['dataDir']}/index.json")
    sdxl = len(encoders_in_base) == 2
    latent_cache, text_cache = batches.open_caches(data, latents_dir, text_dir, sdxl, base)

    # Trainable full components keep fp32 master weights; frozen and LoRA-adapted ones run in the precision.
    # SDXL's VAE overflows in fp16, so the VAE never runs in fp16.
    def dtype_of(name: str) -> torch.dtype:
        if components[name]["_tag"] == "full":
            return torch.float32
        return torch.float32 if name == "vae" and precision == "fp16" else weight_dtype

    models: dict[str, torch.nn.Module] = {}
    if diffusion:
        models["unet"] = frozen(load_unet(base, dtype_of("unet")))
    vae_config = read_json(Path(base) / "vae" / "config.json")
    if reconstruction or (diffusion and latent_cache is None):
        models["vae"] = frozen(load_vae(base, dtype_of("vae")))
    encoders: list[TextEncoder] = []
    if diffusion and text_cache is None:
        encoders = load_text_encoders(base)
        for encoder in encoders:
            encoder.model.to(dtype_of(encoder.name))
            models[encoder.name] = frozen(encoder.model)
    # Made from the UNet before any adapter is added to it.
    controlnet = None if declared_controlnet is None else frozen(initial_controlnet(
        declared_controlnet, request.get("controlNetFolder"), models["unet"], vae_config, data.condition_channels,
        f"{request['dataDir']}/index.json", seed))
    adapted = adapt(models, encoders, adaptation, seed)
    if controlnet is not None:
        treatment = declared_controlnet["treatment"]
        controlnet.to(torch.float32 if treatment["_tag"] == "full" else weight_dtype)
        if treatment["_tag"] == "full":
            train_fully(controlnet, CONTROLNET, treatment, adapted)
        elif treatment["_tag"] == "lora":
            add_lora(controlnet, CONTROLNET, treatment, seed, adapted)
        models[CONTROLNET] = controlnet
        trains[CONTROLNET] = treatment["_tag"] != "frozen"
    for model in models.values():
        model.to(device)
    for t in adapted.trainables:
        t.parameter.data = t.parameter.data.float()
    for name, model in models.items():
        if trains.get(name) or (token is not None and name in token["trained"]):
            model.train()
    if train["gradientCheckpointing"]:
        for name, model in models.items():
            if name.startswith("text_encoder"):
                # transformers 5 renamed it; the old name warns.
                (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
            else:
                model.enable_gradient_checkpointing()
    scheduler = noise_scheduler(base)
    spellings = token["spellings"] if token is not None else []

    factor = 2 ** (len(vae_config["block_out_channels"]) - 1)
    latent_shape = tuple(latent_cache.shape) if latent_cache is not None else (
        math.ceil(data.height / factor), math.ceil(data.width / factor), vae_config["latent_channels"])
    sources = batches.Sources(
        data=data,
        latents=latent_cache,
        text=text_cache,
        vae_channels=vae_config["in_channels"],
        latent_shape=latent_shape,
        scaling_factor=latent_cache.index["scalingFactor"] if latent_cache is not None else vae_config.get("scaling_factor", 0.18215),
        shift_factor=(latent_cache.index["shiftFactor"] if latent_cache is not None else vae_config.get("shift_factor")) or 0.0,
        num_train_timesteps=scheduler.config.num_train_timesteps,
        members=None if split is None else split[1],
        conditions=controlnet is not None,
    )
    needs = {"diffusion": diffusion, "reconstruction": reconstruction, "captionDropout": train["captionDropout"], "noiseOffset": train["noiseOffset"]}

    def encode_live(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vae = models["vae"]
        with torch.no_grad():
            posterior = vae.encode(torch.from_numpy(images).to(device, next(vae.parameters()).dtype)).latent_dist
        return posterior.mean.float().cpu().numpy(), posterior.logvar.float().cpu().numpy()

    orders = batches.EpochOrders()

    def load(at: batches.Position) -> batches.MicroBatch:
        return batches.load_micro_batch(at, sources, needs, orders, encode_live)

    def diffusion_loss_of(batch: batches.MicroBatch, min_snr_gamma: float | None = None) -> torch.Tensor:
        if batch.cached_prompt is not None:
            context = batch.cached_prompt.to(device)
            pooled = batch.cached_pooled.to(device) if batch.cached_pooled is not None else None
        else:
            context, pooled = prompts.encode(encoders, [prompts.spell_out(c, spellings) for c in batch.captions], device)
        added = {"text_embeds": pooled, "time_ids": batch.time_ids.to(device)} if sdxl else None
        control = None if controlnet is None else (controlnet, batch.conditions.to(device))
        return losses.diffusion_loss(
            scheduler, models["unet"], batch.latents.to(device), batch.noise.to(device), batch.timesteps.to(device),
            context, added, min_snr_gamma, control)

    def loss_of(batch: batches.MicroBatch) -> torch.Tensor:
        parts = []
        if diffusion:
            parts.append(diffusion_loss_of(batch, train.get("minSnrGamma")))
        if reconstruction:
            vae = models["vae"]
            dtype = next(vae.parameters()).dtype
            parts.append(losses.vae_loss(vae, batch.images.to(device, dtype), batch.vae_draws.to(device), train["vae"]))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    if declared_validation is None:
        validation_loss = None
    elif split is not None:
        validation_loss = ValidationLoss(declared_validation, seed, split[0], sources, encode_live, f"{request['dataDir']}/index.json")
    else:
        held_out = held_out_data(request, data)
        held_latents, held_text = batches.open_caches(
            held_out, request["validation"].get("latentsDir") if not reconstruction else None,
            request["validation"].get("textDir") if not encoders_train else None, sdxl, base)
        validation_loss = ValidationLoss(
            declared_validation, seed, list(range(len(held_out.samples))),
            replace(sources, data=held_out, latents=held_latents, text=held_text, members=None),
            encode_live, f"{request['validation']['dataDir']}/index.json")
    return Session(request, accelerator, ranks, device, models, encoders, adapted, sdxl, spellings, data, load, loss_of,
                   validation_loss, diffusion_loss_of, prefetchable=latent_cache is not None or not diffusion, controlnet=controlnet)


def train(request: dict[str, Any], channel: Channel) -> dict[str, Any]:
    session = open_session(request)
    accelerator, adapted, train, ranks = session.accelerator, session.adapted, request["train"], session.ranks
    work_dir = Path(request["workDir"])
    seed: int = train["seed"]
    sharded = request.get("sharding", "none") == "fsdp"
    ema = {t.name: t.parameter.detach().clone() for t in adapted.trainables} if train.get("ema") is not None else None
    # Restored into the whole parameters, before any sharding cuts them.
    restored = checkpoint.restore(work_dir, seed, adapted.trainables, ema)
    if sharded:
        sharding.shard_unet(session.models["unet"], adapted, ranks.count)
        channel.log(f"the UNet is sharded over {ranks.count} processes (FSDP)")

    groups = []
    for group in adapted.groups:
        parameters = [t.parameter for t in adapted.trainables if t.group == group["name"]]
        if parameters:
            groups.append({"params": parameters, "lr": group["lr"], "initial_lr": group["lr"], "weight_decay": group["weightDecay"], "name": group["name"]})
    optimizer_declared = train["optimizer"]
    betas = (optimizer_declared["beta1"], optimizer_declared["beta2"])
    if optimizer_declared["_tag"] == "adamw8bit":
        import bitsandbytes

        optimizer = bitsandbytes.optim.AdamW8bit(groups, betas=betas, eps=optimizer_declared["epsilon"])
    else:
        optimizer = torch.optim.AdamW(groups, betas=betas, eps=optimizer_declared["epsilon"])
    if accelerator.scaler is not None:
        # accelerate's wrapper steps the fp16 loss scaler; without one it adds a package lookup (a sys.path
        # search for lomo_optim) and a signature inspection to every step, and nothing else.
        optimizer = accelerator.prepare(optimizer)
    parameters = [t.parameter for t in adapted.trainables]

    history: list[dict[str, Any]] = []
    first = 0
    if restored is not None:
        state, optimizer_state = restored
        optimizer.load_state_dict(sharding.sharded_optimizer_state(optimizer_state["optimizer"], optimizer) if sharded else optimizer_state["optimizer"])
        if accelerator.scaler is not None and optimizer_state.get("scaler") is not None:
            accelerator.scaler.load_state_dict(optimizer_state["scaler"])
        history = state.history
        first = state.step
        channel.log(f"resuming from the checkpoint at step {first} of {train['steps']}")
    if ranks.count > 1:
        channel.log(f"data parallel on {ranks.count} processes: global batch {train['batchSize']} = {ranks.count} × "
                    f"{train['batchSize'] // ranks.count} per process, {train['gradientAccumulation']} micro-batch(es) per step")
    saved = first

    def save_checkpoint(step: int) -> None:
        if sharded:
            # Every process takes part in gathering the shards; rank 0 writes.
            trainables = sharding.full_trainables(adapted.trainables, ranks.leader)
            optimizer_state = sharding.full_optimizer_state(optimizer.state_dict(), ranks.leader)
        elif ranks.leader:
            trainables, optimizer_state = adapted.trainables, optimizer.state_dict()
        if not ranks.leader:
            return
        state = {"optimizer": optimizer_state, "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None}
        checkpoint.save(work_dir, step, seed, trainables, ema, state, history)

    validation = (
        ValidationSampler.of(request, session.models, session.encoders, session.spellings, session.sdxl, session.data, session.device)
        if train["validationPrompts"] and ranks.leader else None
    )
    validation_loss_every = (train.get("validationLoss") or {}).get("every") or train["checkpointEvery"]
    steps, accumulation, batch_size = train["steps"], train["gradientAccumulation"], train["batchSize"]
    positions = [(step, micro) for step in range(first, steps) for micro in range(accumulation)]

    first_row, rows = ranks.rows(batch_size)

    def position(i: int) -> batches.Position | None:
        return batches.Position(seed, positions[i][0], positions[i][1], accumulation, batch_size, first_row, rows) if i < len(positions) else None

    prefetcher = Prefetcher(session.load, enabled=session.prefetchable)
    # The curve starts where training starts: the held-out loss before any update (a resumed run has it).
    if session.validation_loss is not None and ranks.leader and first == 0:
        with accelerator.autocast():
            channel.metrics(0, {"validation_loss": session.validation_loss.measure(session.models, session.diffusion_loss_of)})
    try:
        for step in range(first, steps):
            stop = agreed_stop(accelerator, ranks, channel.stop_requested)
            if stop is not None:
                if step > saved:
                    save_checkpoint(step)
                raise Stopped(stop)
            started = time.perf_counter()
            loss_sum = 0.0
            optimizer.zero_grad(set_to_none=True)
            for micro in range(accumulation):
                index = (step - first) * accumulation + micro
                batch = prefetcher.get(position(index), position(index + 1))
                seed_step(draws.mix_seed(seed, draws.LORA_DROPOUT, step, micro), session.device)
                with accelerator.autocast():
                    loss = session.loss_of(batch)
                accelerator.backward(loss / accumulation)
                loss_sum += float(loss.detach()) / accumulation
            if ranks.count > 1:
                # FSDP has averaged the sharded gradients already.
                loss_sum = average_gradients(accelerator, [p for p in parameters if not sharding.is_sharded(p)], loss_sum)
            if accelerator.scaler is not None:
                accelerator.unscale_gradients()
            max_norm = train.get("maxGradNorm")
            grad_norm = sharding.clip_gradients(parameters, max_norm) if sharded else float(
                torch.nn.utils.clip_grad_norm_(parameters, max_norm if max_norm is not None else math.inf))
            factor = learning_rate_factor(train["lrSchedule"], step, steps)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
            optimizer.step()
            with torch.no_grad():
                for encoder, norm in adapted.token_norms.items():
                    rows = adapted.token_rows[encoder]
                    rows.copy_(rows / rows.norm(dim=1, keepdim=True) * norm)
                if ema is not None:
                    decay = ema_decay(train["ema"]["decay"], step + 1)
                    for t in adapted.trainables:
                        average = ema[t.name]
                        average.sub_((average - t.parameter.detach()) * (1 - decay))
            seconds = time.perf_counter() - started
            record = {
                "step": step + 1,
                "loss": loss_sum,
                "gradNorm": grad_norm,
                "lr": {g["name"]: g["initial_lr"] * factor for g in optimizer.param_groups},
                "imagesPerSecond": batch_size * accumulation / seconds,
            }
            history.append(record)
            if not math.isfinite(loss_sum):
                channel.log(f"step {step + 1}: the loss is {loss_sum}")
            # In the step's own line of the training log, which keeps one line per step (a resumed run's repeat replaces it).
            measured = {}
            if session.validation_loss is not None and ranks.leader and ((step + 1) % validation_loss_every == 0 or step + 1 == steps):
                with accelerator.autocast():
                    measured["validation_loss"] = session.validation_loss.measure(session.models, session.diffusion_loss_of)
            channel.metrics(step + 1, {
                **measured, "loss": loss_sum, "grad_norm": grad_norm, "images_per_s": record["imagesPerSecond"],
                **{f"lr/{name}": lr for name, lr in record["lr"].items()},
            })
            channel.progress(step + 1, steps, "steps")
            if validation is not None and ((step + 1) % validation.every == 0 or step + 1 == steps):
                validation.sample(step + 1, channel)
            if (step + 1) % train["checkpointEvery"] == 0 or step + 1 == steps:
                save_checkpoint(step + 1)
                saved = step + 1
    finally:
        prefetcher.close()

    if sharded:
        adapted = dataclasses.replace(adapted, trainables=sharding.full_trainables(adapted.trainables, ranks.leader))
    if ranks.leader:
        write_model(work_dir, adapted, ema)
        if session.controlnet is not None:
            write_trained_controlnet(work_dir, session.controlnet, adapted, ema, request["adaptation"]["controlnet"]["treatment"])
    return {
        "steps": steps,
        "ema": ema is not None,
        "history": history,
        "lora": {component: [m.manifest() for m in modules] for component, modules in adapted.lora.items()},
    }
