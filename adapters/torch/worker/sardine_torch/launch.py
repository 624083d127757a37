"""A train request for several processes (`processes` > 1): this worker becomes their launcher.

It starts `torch.distributed.run` (torchrun; accelerate's own `launch --multi_gpu` is a wrapper around it,
and on CPU accelerate launches several processes only through MPI) with `--standalone`, which picks a free
rendezvous port, so concurrent steps on one machine never collide. Each process runs `python -m
sardine_torch` with the request in a file (stdin is the launcher's) and an Accelerator that reads torchrun's
environment: gloo on CPU, NCCL on CUDA.

Rank 0's messages come to the launcher on a pipe and go on to the engine; the launcher says hello and sends
the one final message itself, once torchrun has exited: rank 0's result or `stopped`, or the error of the
process that failed first (every rank writes its exception to a file), naming its rank. A stop request
(SIGTERM, SIGINT, stdin closed) is sent on as SIGTERM to every process (each writes its pid on start), not
through torchrun, which would kill them 30 s later, too soon for a large checkpoint; the processes agree on
the step to stop at and rank 0 checkpoints.

Inside a SLURM job that the SLURM executor submitted for several processes or nodes, srun starts the ranks
instead, one per task, on every node (slurm_ranks.py); a stop request then reaches them through scancel.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from .protocol import Channel, Stopped, error_message
from .slurm_ranks import rank_environment, rendezvous, srun_command, stop_ranks, under_srun

# The environment that makes `python -m sardine_torch` one of the training processes.
REQUEST_FILE = "SARDINE_TORCH_REQUEST_FILE"
ERRORS_FOLDER = "SARDINE_TORCH_ERRORS"


class RankFailed(Exception):
    """A training process failed; `fields` is its error message (exception, message, frames), rank named."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields["message"])
        self.fields = fields


def first_failure(folder: Path, processes: int) -> dict[str, Any] | None:
    """The exception of the process that failed first, the others' after it, and the processes that ended
    without a word (killed: their peers then fail on the lost connection); None when every process finished."""
    found = sorted((json.loads(f.read_text(encoding="utf-8")) for f in folder.glob("rank-*.json")), key=lambda e: e["time"])
    silent = [r for r in range(processes) if not (folder / f"rank-{r}.json").exists() and not (folder / f"rank-{r}.done").exists()]
    if not found and not silent:
        return None
    died = "".join(f"; training process {r} of {processes} ended without reporting an error (killed? torchrun's summary above "
                   "gives its exit status)" for r in silent)
    if not found:
        return {"exception": "ProcessDied", "message": died[2:], "frames": []}
    first, rest = found[0], found[1:]
    then = "".join(f"; then process {e['rank']}: {e['exception']}: {(e['message'].splitlines() or [''])[0]}" for e in rest)
    return {
        "exception": first["exception"],
        "message": f"training process {first['rank']} of {processes} failed: {first['message']}{then}{died}",
        "frames": first["frames"],
    }


# The processes' shared folder (request, pids, errors) inside the train step's work folder, not in /tmp: one that
# a SIGKILLed launcher leaves is removed by the next run of the step (remove_ranks_folder) or with the work folder.
# Being in the cache, which the compute nodes share, it is also where the ranks of other nodes meet under srun.
RANKS_FOLDER = ".ranks"


def remove_ranks_folder(work_dir: str) -> None:
    """Removes what an earlier launcher of this step left (killed before it could), so it never joins the output."""
    shutil.rmtree(Path(work_dir) / RANKS_FOLDER, ignore_errors=True)


@contextlib.contextmanager
def ranks_folder(work_dir: str) -> Iterator[Path]:
    remove_ranks_folder(work_dir)
    folder = Path(work_dir) / RANKS_FOLDER
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        remove_ranks_folder(work_dir)


def train_on_processes(request: dict[str, Any], channel: Channel) -> dict[str, Any]:
    from .data_parallel import check_divisible

    processes: int = request["processes"]
    nodes: int = request.get("nodes", 1)
    srun = under_srun()
    if nodes > 1 and not srun:
        raise ValueError(f"resources.train.nodes: {nodes} nodes need the slurm executor (sardine run --executor slurm), which starts the "
                         "training processes on them with srun")
    world = processes * nodes
    check_divisible(request["train"]["batchSize"], world)
    with ranks_folder(request["workDir"]) as folder:
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        environment = {**os.environ, REQUEST_FILE: str(folder / "request.json"), ERRORS_FOLDER: str(folder)}
        if srun:
            command = srun_command(sys.executable, processes, nodes)
            address, port = rendezvous()
            environment.update(MASTER_ADDR=address, MASTER_PORT=str(port))
            channel.log(f"starting {world} training processes as SLURM tasks ({nodes} node(s) × {processes}), rendezvous at "
                        f"{address}:{port}: {' '.join(command)}")
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "sardine_torch"]
            channel.log(f"starting {processes} training processes: {' '.join(command[1:])}")
        # In a session of its own: Ctrl-C in a terminal reaches this launcher, which stops the processes itself;
        # torchrun would forward it and kill them 30 s later (srun would cancel them at once).
        torchrun = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=environment, text=True, encoding="utf-8",
                                    start_new_session=True)
        done = threading.Event()

        def pass_on_stop() -> None:
            while not done.wait(0.2):
                if channel.stop_requested is not None and srun:
                    stop_ranks()
                    return
                if channel.stop_requested is not None:
                    started = [int(f.read_text(encoding="utf-8")) for f in folder.glob("rank-*.pid")]
                    for pid in started:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
                    # Processes not yet started (no pid written) stop with torchrun.
                    if len(started) < world:
                        torchrun.send_signal(signal.SIGTERM)
                    return

        threading.Thread(target=pass_on_stop, name="stop-to-torchrun", daemon=True).start()
        final: dict[str, Any] | None = None
        try:
            assert torchrun.stdout is not None
            for line in torchrun.stdout:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    sys.stderr.write(line)
                    continue
                kind = message.pop("type", None)
                if kind in ("result", "stopped"):
                    final = {"type": kind, **message}
                elif kind is not None and kind != "hello":
                    channel.send(kind, **message)
            status = torchrun.wait()
        finally:
            done.set()
            if torchrun.poll() is None:
                torchrun.kill()
                torchrun.wait()
        failure = first_failure(folder, world)
        reported = any(folder.glob("rank-*.json"))
    # Stopped before the processes could answer (torchrun stopped them while starting): a stop, not a death.
    if final is None and not reported and channel.stop_requested is not None:
        raise Stopped(channel.stop_requested)
    if failure is not None:
        raise RankFailed(failure)
    if final is not None and final["type"] == "stopped":
        raise Stopped(final["reason"])
    if final is None or status != 0:
        raise RuntimeError(f"{command[0] if srun else 'torchrun'} exited with status {status} without a result from the training processes (their output is above)")
    return final["value"]


class RankChannel(Channel):
    """A training process's channel: rank 0's messages go to the launcher, the other ranks stay silent; every
    rank's exception goes to a file for the launcher to report."""

    def __init__(self, rank: int, errors: Path) -> None:
        super().__init__()
        self.rank = rank
        self.errors = errors

    def listen(self) -> None:
        """Stop requests from here on: SIGTERM and SIGINT, which the launcher sends to the pid written here."""
        from .protocol import watch_for_signals

        watch_for_signals(self)
        temporary = self.errors / f".rank-{self.rank}.pid.partial"
        temporary.write_text(str(os.getpid()), encoding="utf-8")
        os.replace(temporary, self.errors / f"rank-{self.rank}.pid")

    def send(self, kind: str, **fields: Any) -> None:
        if self.rank == 0 and kind != "hello":
            super().send(kind, **fields)

    def finished(self) -> None:
        (self.errors / f"rank-{self.rank}.done").touch()

    def fail(self, error: BaseException) -> None:
        record = {"rank": self.rank, "time": time.time(), **error_message(error)}
        temporary = self.errors / f".rank-{self.rank}.json.partial"
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, self.errors / f"rank-{self.rank}.json")


def run_rank() -> int:
    """One training process (torchrun's environment names its rank); exit status 0 after a result or a stop."""
    if under_srun():
        os.environ.update(rank_environment(os.environ))
    channel = RankChannel(int(os.environ["RANK"]), Path(os.environ[ERRORS_FOLDER]))
    try:
        channel.listen()
        request = json.loads(Path(os.environ[REQUEST_FILE]).read_text(encoding="utf-8"))
        from .environment import configure

        configure()
        from .training import train

        channel.send("result", value=train(request, channel))
        channel.finished()
        return 0
    except Stopped as stopped:
        channel.send("stopped", reason=stopped.reason)
        channel.finished()
        return 0
    except BaseException as error:  # noqa: BLE001 — every failure is reported to the launcher, then the process exits
        channel.fail(error)
        return 1
    finally:
        import torch.distributed

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
