"""Data-parallel training inside one of several processes that torchrun started (launch.py).

Every process holds the whole model and trains on its slice of each global micro-batch (batches.py draws
for the global batch and slices, so the samples and draws are those of a one-process run). After a step's
micro-batches, the gradients are averaged across processes with accelerate's `reduce` (an all-reduce over
gloo or NCCL), in buckets of flattened tensors, together with the loss: every process then clips and steps
the same gradients, so the weights stay equal without a broadcast.

This is the arithmetic of torch's DistributedDataParallel with `no_sync` on all but the last micro-batch; a
DDP wrapper is not used because the trainables live in several models (UNet, text encoders, VAE, token
rows) whose forward passes would all have to go through wrappers (and the validation sampler and the
exports through the unwrapped ones), and a rank whose slice drops every caption leaves the token rows
unused, which DDP only tolerates with `find_unused_parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# Elements per all-reduce (float32: 64 MB), so a full UNet's gradients never need a second full copy.
BUCKET_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int
    count: int

    @property
    def leader(self) -> bool:
        """Rank 0 speaks the protocol and writes every file; the others stay silent."""
        return self.rank == 0

    def rows(self, batch_size: int) -> tuple[int, int]:
        """(first row, rows) of this process's slice of a global batch."""
        return self.rank * batch_size // self.count, batch_size // self.count


def ranks_of(accelerator: Any) -> Ranks:
    return Ranks(accelerator.process_index, accelerator.num_processes)


def check_divisible(batch_size: int, processes: int) -> None:
    if batch_size % processes != 0:
        raise ValueError(
            f"train.batchSize {batch_size} is the global batch and does not divide among {processes} processes "
            f"(resources.train.processes); declare a batch size that is a multiple of {processes}")


def average_gradients(accelerator: Any, parameters: list[torch.nn.Parameter], loss: float) -> float:
    """Averages the parameters' gradients (a missing one counts as zero) and the loss across the processes;
    returns the average loss."""
    device = parameters[0].device if parameters else accelerator.device
    pending: list[torch.nn.Parameter] = []
    size = 0

    def flush(extra: list[float]) -> list[float]:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in pending]
        flat = torch.cat([g.reshape(-1).float() for g in grads] + [torch.tensor(extra, dtype=torch.float32, device=device)])
        averaged = accelerator.reduce(flat, reduction="mean")
        offset = 0
        for p in pending:
            n = p.numel()
            p.grad = averaged[offset:offset + n].view_as(p).to(p.dtype).clone()
            offset += n
        pending.clear()
        return averaged[offset:].tolist()

    for p in parameters:
        if pending and size + p.numel() > BUCKET_ELEMENTS:
            flush([])
            size = 0
        pending.append(p)
        size += p.numel()
    # The last bucket carries the loss.
    return flush([loss])[0]


def agreed_stop(accelerator: Any, ranks: Ranks, reason: str | None) -> str | None:
    """Whether any process was asked to stop: all stop at the same step, or the others would wait forever in
    the next all-reduce. Signals reach the processes at slightly different moments."""
    if ranks.count == 1:
        return reason
    flag = torch.tensor([0.0 if reason is None else 1.0], device=accelerator.device)
    if float(accelerator.reduce(flag, reduction="sum")[0]) == 0:
        return None
    return reason or "another training process was asked to stop"
