"""Training processes as the tasks of a SLURM job step: `srun` starts one rank per task, on every node of the job.

The SLURM executor submits a train step on several processes or nodes with `--nodes` and `--ntasks-per-node` and
sets SARDINE_TORCH_LAUNCHER=srun in its job script. The launcher (launch.py) then starts the ranks with srun
rather than torchrun: SLURM places, binds, accounts and signals each rank itself (a time limit's SIGTERM reaches
every rank directly, with no torchrun agent between that would kill them 30 s later), and each task takes its
rank from SLURM's variables. The launcher runs in the batch step, on the allocation's first node, where srun's
block distribution puts task 0, so the rendezvous is there: MASTER_ADDR is the address of the first node of the
job's node list (`scontrol show hostnames`; its NodeAddr, which is its name unless the cluster configures
another, as the test cluster does, whose nodes share one host). MASTER_PORT is 20000 + job id mod 10000: the
same on every task without any exchange, different for the jobs that share a node unless their ids are 10000
apart, and below Linux's ephemeral range (32768 and up), so no outgoing connection holds it by chance; if it is
taken on the first node, the next free one in the range is used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from typing import Mapping

# The job script's word that the ranks are SLURM tasks (set by adapters/slurm).
LAUNCHER = "SARDINE_TORCH_LAUNCHER"
PORT_BASE = 20000
PORT_SPAN = 10000


def under_srun(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(LAUNCHER) == "srun"


def first_node(node_list: str) -> tuple[str, str]:
    """(name, address) of the first node of a SLURM node list (`node[01-04],gpu7`): its name as `scontrol show
    hostnames` expands the list, its address as SLURM reaches it (NodeAddr, which is the name unless the cluster
    configures another)."""
    names = subprocess.run(["scontrol", "show", "hostnames", node_list], check=True, capture_output=True, text=True).stdout.split()
    if not names:
        raise RuntimeError(f"scontrol show hostnames {node_list!r} names no node")
    shown = subprocess.run(["scontrol", "--oneliner", "show", "node", names[0]], check=True, capture_output=True, text=True).stdout
    address = re.search(r"(?:^| )NodeAddr=(\S+)", shown)
    return names[0], address.group(1) if address else names[0]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def rendezvous(environ: Mapping[str, str] = os.environ) -> tuple[str, int]:
    """(MASTER_ADDR, MASTER_PORT) of the job: its first node's address, and the port of its id (the next free one
    when taken, checked only where this runs on that node)."""
    node, host = first_node(environ["SLURM_JOB_NODELIST"])
    start = int(environ["SLURM_JOB_ID"]) % PORT_SPAN
    here = environ.get("SLURMD_NODENAME") == node
    for offset in range(PORT_SPAN):
        port = PORT_BASE + (start + offset) % PORT_SPAN
        if not here or port_is_free(port):
            return host, port
    raise RuntimeError(f"no free port between {PORT_BASE} and {PORT_BASE + PORT_SPAN - 1} on {host} for the training processes' rendezvous")


def srun_command(python: str, processes: int, nodes: int, environ: Mapping[str, str] = os.environ) -> list[str]:
    """srun starting `processes` ranks on each of `nodes` nodes: block distribution (task 0 on the first node),
    the CPUs per task the job asked for (srun does not inherit sbatch's since SLURM 22.05), and every rank
    stopped when one fails, as torchrun does."""
    cpus = environ.get("SLURM_CPUS_PER_TASK")
    return [
        "srun",
        f"--nodes={nodes}",
        f"--ntasks-per-node={processes}",
        f"--ntasks={nodes * processes}",
        "--distribution=block",
        *([f"--cpus-per-task={cpus}"] if cpus else []),
        "--kill-on-bad-exit=1",
        python,
        "-m",
        "sardine_torch",
    ]


def rank_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """torch.distributed's variables of one srun task, from SLURM's (accelerate and torch read these)."""
    return {
        "RANK": environ["SLURM_PROCID"],
        "LOCAL_RANK": environ["SLURM_LOCALID"],
        "WORLD_SIZE": environ["SLURM_NTASKS"],
        "LOCAL_WORLD_SIZE": str(int(environ["SLURM_NTASKS"]) // int(environ["SLURM_NNODES"])),
        "NODE_RANK": environ["SLURM_NODEID"],
    }


def stop_ranks(environ: Mapping[str, str] = os.environ) -> None:
    """SIGTERM to every rank on every node: `scancel --signal` signals the job's steps without cancelling them
    (the batch step, this launcher's, is spared). SIGTERM to srun itself would cancel the step at once."""
    subprocess.run(["scancel", "--signal=TERM", environ["SLURM_JOB_ID"]], check=False, capture_output=True)
