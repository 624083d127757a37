"""`python -m sardine_torch`: one request on stdin, the operation's messages on stdout (protocol.py).

Operations: hello (the environment only), init-model, encode-latents, encode-text, train, generate, export, export-onnx.
Exit status: 0 after `result` or `stopped`, 1 after `error`. A train request with `processes` (× `nodes`) > 1 runs on
that many processes (launch.py); with torchrun's (or srun's) environment and a request file, this is one of them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from .protocol import PROTOCOL, Channel, Stopped, error_message, read_request, watch_for_stop


def operations() -> dict[str, Callable[[dict[str, Any], Channel], dict[str, Any]]]:
    # Imported on demand: torch and diffusers take seconds to import, and `hello` must report their absence.
    from .encode import encode_latents, encode_text
    from .export import export_diffusers
    from .export_onnx import export_onnx
    from .generate import generate
    from .init_model import init_model
    from .training import train

    return {
        "init-model": init_model,
        "encode-latents": encode_latents,
        "encode-text": encode_text,
        "train": train,
        "generate": generate,
        "export": export_diffusers,
        "export-onnx": export_onnx,
    }


def main() -> int:
    from .launch import REQUEST_FILE, RankFailed, run_rank

    if REQUEST_FILE in os.environ:
        return run_rank()
    channel = Channel()
    try:
        request = read_request()
        watch_for_stop(channel)
        from .environment import configure, describe

        configure()
        channel.send("hello", protocol=PROTOCOL, **describe())
        operation = request["operation"]
        if operation == "hello":
            channel.send("result", value={})
            return 0
        known = operations()
        if operation not in known:
            raise ValueError(f"unknown operation {operation!r}; this worker does {', '.join(['hello', *known])}")
        if operation == "train":
            from .launch import remove_ranks_folder

            remove_ranks_folder(request["workDir"])
        if operation == "train" and request.get("processes", 1) * request.get("nodes", 1) > 1:
            from .launch import train_on_processes

            channel.send("result", value=train_on_processes(request, channel))
        else:
            channel.send("result", value=known[operation](request, channel))
        return 0
    except RankFailed as failed:
        channel.send("error", **failed.fields)
        return 1
    except Stopped as stopped:
        channel.send("stopped", reason=stopped.reason)
        return 0
    except BaseException as error:  # noqa: BLE001 — every failure is reported to the engine, then the worker exits
        channel.send("error", **error_message(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
