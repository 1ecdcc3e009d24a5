"""The API process: spawn the engine process, then serve the WSGI API with werkzeug."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from testbed.fakeaws import wire
from testbed.fakeaws.api.engine_client import EngineClient
from testbed.fakeaws.api.middleware import FakeAwsApp
from testbed.fakeaws.api.restart import EngineSupervisor
from testbed.fakeaws.settings import FakeAwsSettings, engine_argv

log = logging.getLogger(__name__)

# Spawned by module name, not imported: the engine runs in its own process.
ENGINE_MODULE = "testbed.fakeaws.engine"


def start_engine(settings: FakeAwsSettings, extra: list[str] | None = None
                 ) -> tuple[subprocess.Popen[bytes], int]:
    """Spawn the engine; it exits by itself when our end of its stdin closes. `extra`:
    flags of a restart (--restore, --handover)."""
    # The engine does not know the API's --host; it gets the resolved listener address.
    resolved = settings.model_copy(update={"listener_host": settings.listen_on})
    cmd = [sys.executable, "-m", ENGINE_MODULE, "--control-port", "0", *engine_argv(resolved),
           *(extra or [])]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith(wire.READY + " "):
        proc.kill()
        raise RuntimeError(f"engine failed to start: {line!r}")
    return proc, int(line.split()[1])


def serve(settings: FakeAwsSettings, ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT. `ready(api_url)` is called once the API accepts requests."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Engines (the first and those of later restarts) are spawned from one thread started
    # before os.nice below: on Linux niceness is per thread and children inherit their
    # spawning thread's, and an unprivileged process cannot lower it again.
    spawner = ThreadPoolExecutor(1, thread_name_prefix="engine-spawn")
    supervisor = EngineSupervisor(
        lambda extra: spawner.submit(start_engine, settings, extra).result())
    if settings.api_nice:
        # The API (moto, ~ms of CPU per call) yields the CPU to the engine, whose latency is
        # what load tests measure; API calls are not latency critical.
        os.nice(settings.api_nice)
    app = FakeAwsApp(EngineClient(supervisor.port), settings, supervisor)
    httpd = make_server(settings.host, settings.port, app, threaded=True,
                        request_handler=MotoRequestHandler)
    httpd.daemon_threads = True  # type: ignore[attr-defined]
    app.sync()

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = httpd.server_address[:2]
    api = f"http://{host!s}:{port}"
    log.info("api listening url=%s engine_pid=%s control_port=%s", api, supervisor.proc.pid,
             supervisor.port)
    if ready is not None:
        ready(api)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        supervisor.stop()
        spawner.shutdown(wait=False)
