"""Child process that runs llama.cpp's server (``xllamacpp.Server``) on loopback.

Started by ``EmbeddedLlamaServer``; run as a script (not ``-m``) so it needs nothing but
``xllamacpp`` on the path. It prints one JSON line ``{"base_url": ...}`` on stdout once
the model is loaded and the port is bound, then serves until its stdin closes (the parent
stopped it or died) or it gets SIGTERM. A child process rather than a thread keeps
llama.cpp's native logs, memory and any crash out of the gateway process, and makes
stopping it as simple as ending the process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--alias", required=True, help="model name the server reports")
    parser.add_argument("--ctx-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.n_ctx = args.ctx_size  # shared by the parallel slots
    params.n_parallel = args.parallel
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = args.threads
        # No busy-polling: on a shared CPU, spinning threads starve each other (measured
        # 20x slower generation with 2 polling threads on 2 loaded cores than with 1).
        cpu.poll = 0
    params.hostnames = [args.host]
    params.port = args.port
    server = xllamacpp.Server(params)  # returns once the model is loaded and port bound

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def wait_for_stdin_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    sys.stdout.write(json.dumps({"base_url": server.listening_address}) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    del server  # ~Server stops the HTTP listener and the inference loop
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
