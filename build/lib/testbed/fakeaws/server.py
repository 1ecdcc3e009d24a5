"""Process wiring: start the engine subprocess, then serve the WSGI API with werkzeug."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from testbed.fakeaws.api.middleware import FakeAwsApp
from testbed.fakeaws.engine_client import EngineClient

log = logging.getLogger("testbed.fakeaws.server")


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 4566
    listener_host: str | None = None
    register_delay: float = 0.0
    deregister_delay: float = 0.0
    min_health_check_interval: float = 5.0
    connect_timeout: float = 10.0
    log_level: str = "INFO"
    loop: str = "asyncio"
    api_nice: int = 10


def start_engine(opts: ServeOptions) -> tuple[subprocess.Popen[bytes], int]:
    """Spawn the engine; it exits by itself when our end of its stdin closes."""
    cmd = [sys.executable, "-m", "testbed.fakeaws.engine", "--control-port", "0",
           "--listener-host", opts.listener_host or opts.host,
           "--register-delay", str(opts.register_delay),
           "--deregister-delay", str(opts.deregister_delay),
           "--min-health-check-interval", str(opts.min_health_check_interval),
           "--connect-timeout", str(opts.connect_timeout), "--log-level", opts.log_level,
           "--loop", opts.loop]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"engine failed to start: {line!r}")
    return proc, int(line.split()[1])


def serve(opts: ServeOptions, ready: Any = None) -> None:
    """Run until SIGTERM/SIGINT. `ready(api_url)` is called once the API accepts requests."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    engine_proc, control_port = start_engine(opts)
    if opts.api_nice:
        # The API (moto, ~ms of CPU per call) yields the CPU to the engine, whose latency is
        # what load tests measure; API calls are not latency critical.
        os.nice(opts.api_nice)
    app = FakeAwsApp(EngineClient(control_port), opts.min_health_check_interval)
    httpd = make_server(opts.host, opts.port, app, threaded=True,
                        request_handler=MotoRequestHandler)
    httpd.daemon_threads = True  # type: ignore[attr-defined]
    app.sync()

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = httpd.server_address[:2]
    api = f"http://{host!s}:{port}"
    log.info("api listening url=%s engine_pid=%s control_port=%s", api, engine_proc.pid,
             control_port)
    if ready is not None:
        ready(api)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        if engine_proc.stdin is not None:
            engine_proc.stdin.close()
        try:
            engine_proc.wait(5)
        except subprocess.TimeoutExpired:
            engine_proc.kill()
