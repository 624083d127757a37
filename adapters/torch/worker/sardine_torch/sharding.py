"""`resources.train.sharding: "fsdp"`: the fully trained UNet sharded over the training processes with torch's
FSDP2 (`fully_shard`), so that its weights, gradients and AdamW moments divide by the process count.

FSDP rather than DeepSpeed ZeRO: it is part of torch (no second package with its own CUDA ops to build),
runs on CPU over gloo (so it is tested here for real), and shards one module while the rest of the models
stay plain — the LoRA-adapted or frozen text encoders, the token rows and the VAE stay replicated and are
averaged by data_parallel.py as without sharding.

Each resnet and each transformer block is one FSDP unit (all-gathered just before its forward and backward,
freed after), the rest of each attention (its projections in and out) another, the rest of each down / mid /
up block (its samplers) another, the UNet's own remaining layers (conv_in, time embedding, conv_out) the root
unit: one of SDXL's attentions holds 350 M values, too many to gather whole (framework/plan/memory-plan.ts
counts the units gathered at once).
Parameters are all-gathered in fp32, as the one-process run computes from its fp32 master weights under
autocast: the numbers are those of one process up to the order of float sums. Gradients are reduce-scattered
(averaged over the processes) by FSDP after each micro-batch's backward.

Checkpoints and the trained model keep the one-process format: every process takes part in gathering each
sharded tensor (parameters and AdamW moments, one at a time, in the trainables' order) and rank 0 writes
them; on resume every process reads the full tensors and keeps its own shard. So a run resumes on any count
of processes, with or without sharding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from .adaptation import Adapted, Trainable
from .pipeline import named_parameters

SHARDED_COMPONENT = "unet"


def is_sharded(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def check_shardable(request: dict[str, Any], processes: int) -> None:
    """The worker's own refusals, for a caller that did not plan (framework/plan/engine-support.ts says the same)."""
    train = request["train"]
    unet = request["adaptation"]["components"].get(SHARDED_COMPONENT, {})
    problems = [
        *([f"resources.train.sharding: fsdp shards over several processes (got {processes}); declare resources.train.processes ≥ 2"] if processes < 2 else []),
        *([f"resources.train.sharding: fsdp shards the fully trained UNet, and components.unet is {unet.get('_tag')}"] if unet.get("_tag") != "full" else []),
        *(["train.ema: an EMA of a sharded UNet is not supported; remove train.ema or resources.train.sharding"] if train.get("ema") is not None else []),
        *(["train.optimizer: adamw8bit with a sharded UNet is not supported; declare adamw or remove resources.train.sharding"] if train["optimizer"]["_tag"] != "adamw" else []),
        *(["train.precision: fp16 loss scaling with a sharded UNet is not supported; declare bf16"] if train["precision"] == "fp16" else []),
        *(["train.validationPrompts: validation sampling runs on rank 0 alone and cannot run a sharded UNet; remove them or resources.train.sharding"] if train["validationPrompts"] else []),
        *(["train.validationLoss: the held-out loss runs on rank 0 alone and cannot run a sharded UNet; remove it or resources.train.sharding"] if train.get("validationLoss") is not None else []),
    ]
    if problems:
        raise ValueError("; ".join(problems))


def shard_unet(unet: nn.Module, adapted: Adapted, processes: int) -> None:
    """Shards `unet` over the processes (the units of the module docstring) and points its trainables at the sharded parameters."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(unet.parameters()).device
    mesh = init_device_mesh(device.type, (processes,))
    for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]:
        if block is None:
            continue
        for resnet in getattr(block, "resnets", None) or []:
            fully_shard(resnet, mesh=mesh)
        for attention in getattr(block, "attentions", None) or []:
            for transformer in getattr(attention, "transformer_blocks", None) or []:
                fully_shard(transformer, mesh=mesh)
            fully_shard(attention, mesh=mesh)
        fully_shard(block, mesh=mesh)
    fully_shard(unet, mesh=mesh)
    parameters = dict(named_parameters(unet))
    prefix = f"{SHARDED_COMPONENT}."
    adapted.trainables[:] = [
        dataclasses.replace(t, parameter=parameters[t.name[len(prefix):]]) if t.name.startswith(prefix) else t for t in adapted.trainables
    ]


def full_value(tensor: torch.Tensor, leader: bool) -> torch.Tensor | None:
    """The whole tensor on rank 0's CPU (a collective for a sharded one: every process must call it)."""
    value = tensor.detach().full_tensor() if is_sharded(tensor) else tensor.detach()
    return value.float().cpu() if leader else None


def full_trainables(trainables: list[Trainable], leader: bool) -> list[Trainable]:
    """The trainables with whole CPU tensors on rank 0 (every process must call it; the others get [])."""
    gathered = [dataclasses.replace(t, parameter=full_value(t.parameter, leader)) for t in trainables]
    return gathered if leader else []


def full_optimizer_state(state: dict[str, Any], leader: bool) -> dict[str, Any]:
    """An optimizer state_dict with every sharded moment gathered whole (every process must call it)."""
    return {**state, "state": {
        index: {name: full_value(value, leader) if is_sharded(value) else value for name, value in entry.items()}
        for index, entry in sorted(state["state"].items())
    }}


def sharded_optimizer_state(state: dict[str, Any], optimizer: Any) -> dict[str, Any]:
    """A one-process optimizer state_dict (every process read it whole) with each sharded parameter's moments
    cut to this process's shard, as its parameter is."""
    from torch.distributed.tensor import distribute_tensor

    # A state_dict numbers the parameters group after group.
    parameters = [p for group in optimizer.param_groups for p in group["params"]]

    def shard(index: int, value: Any) -> Any:
        parameter = parameters[index]
        if not is_sharded(parameter) or not torch.is_tensor(value) or value.shape != parameter.shape:
            return value
        return distribute_tensor(value.to(parameter.device), parameter.device_mesh, parameter.placements, src_data_rank=None)

    return {**state, "state": {index: {name: shard(int(index), value) for name, value in entry.items()} for index, entry in state["state"].items()}}


def clip_gradients(parameters: list[torch.Tensor], max_norm: float | None) -> float:
    """torch.nn.utils.clip_grad_norm_ over a mix of sharded and replicated gradients: the squared norms of the
    shards are summed over the processes, the replicated ones (already averaged, equal everywhere) counted once."""
    import torch.distributed as dist

    sharded = [p.grad for p in parameters if p.grad is not None and is_sharded(p.grad)]
    replicated = [p.grad for p in parameters if p.grad is not None and not is_sharded(p.grad)]
    device = sharded[0].to_local().device if sharded else replicated[0].device
    squares = torch.zeros((), dtype=torch.float32, device=device)
    for grad in sharded:
        squares += grad.to_local().float().pow(2).sum()
    dist.all_reduce(squares)
    for grad in replicated:
        squares += grad.float().pow(2).sum()
    total = float(squares.sqrt())
    if max_norm is not None and math.isfinite(total):
        coefficient = min(1.0, max_norm / (total + 1e-6))
        if coefficient < 1.0:
            for grad in sharded + replicated:
                grad.mul_(coefficient)
    return total
