"""The engine process's supervisor: starts it, and on POST /_testbed/restart replaces it by a
new one that starts from the old one's state (docs/fakeaws.md "Restart with state kept").

The API process (moto) is not restarted: moto keeps its state in memory only, and what the
engine needs from it (target groups, listeners, rules, attributes) it gets again through
the usual `/sync` snapshot push. The handover, under the API's moto lock and with every
other engine call held (EngineClient.held), so ELBv2 calls wait instead of failing:

  1. old engine  POST /checkpoint  freeze timers and health checks, write the state file,
                                   offer the listening sockets on a Unix socket
  2. spawn the new engine with --restore FILE --handover PATH: it loads the state, takes the
     very same listening sockets (SCM_RIGHTS), starts its workers, re-arms timers/checks
  3. new engine  POST /sync        its listeners accept on those sockets (both engines do)
  4. old engine  POST /retire      it stops accepting; the API now talks to the new engine
  5. in the background: old engine POST /drained (connections closed gracefully, in-flight
     requests done) -> the events it emitted since the checkpoint go to the new engine,
     which numbers them; then the old engine's stdin is closed and it exits.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.fakeaws import wire
from testbed.fakeaws.api.engine_client import EngineClient

log = logging.getLogger(__name__)

# Starts an engine process with extra flags -> (process, control port), once it is READY.
Spawn = Callable[[list[str]], tuple[subprocess.Popen[bytes], int]]


class Busy(RuntimeError):
    """A restart is already under way."""


class RestartFailed(RuntimeError):
    """The new engine did not take over; the old one goes on."""


class EngineSupervisor:
    def __init__(self, spawn: Spawn) -> None:
        self.spawn = spawn
        self.proc, self.port = spawn([])
        self._running = threading.Lock()
        self._retiring: set[subprocess.Popen[bytes]] = set()

    def restart(self, client: EngineClient, lock: Any,
                snapshot: Callable[[], wire.Snapshot]) -> wire.RestartAnswer:
        """Replace the engine; `client` is the API's (held meanwhile, then switched), `lock`
        the API's moto lock (held so the snapshot the new engine gets stays true).
        A second restart while one runs is refused (Busy -> 409): it would only restart the
        engine that just started."""
        if not self._running.acquire(blocking=False):
            raise Busy("a restart is under way")
        try:
            return self._restart(client, lock, snapshot)
        finally:
            self._running.release()

    def _restart(self, client: EngineClient, lock: Any,
                 snapshot: Callable[[], wire.Snapshot]) -> wire.RestartAnswer:
        start = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="fakeaws-restart-"))
        old_proc, old = self.proc, EngineClient(self.port)
        try:
            with lock, client.held():
                held = time.monotonic()
                req: wire.CheckpointRequest = {"state_file": str(tmp / "state.json"),
                                               "handover": str(tmp / "sockets")}
                code, cp = old.call("POST", "/checkpoint", req)
                if code != 200:
                    raise RestartFailed(f"checkpoint refused: {cp}")
                proc, port = self._take_over(old, req, snapshot)
                serving = time.monotonic()
                retire: wire.RetireRequest = {"grace": wire.RETIRE_GRACE,
                                              "limit": wire.RETIRE_LIMIT}
                code, ans = old.call("POST", "/retire", retire)
                if code != 200:  # the new engine serves anyway; the old one is stopped below
                    log.error("old engine did not retire: %s %s", code, ans)
                stopped = time.monotonic()
                self.proc, self.port = proc, port
                client.switch(port)
            end = time.monotonic()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._retiring.add(old_proc)
        threading.Thread(target=self._finish, args=(old_proc, old, client), daemon=True,
                         name=f"engine-retire-{old_proc.pid}").start()
        answer: wire.RestartAnswer = {
            "old_pid": int(cp["pid"]), "new_pid": proc.pid,
            "handover_ms": round((stopped - start) * 1000, 1),
            "api_wait_ms": round((end - held) * 1000, 1),
            "accept_overlap_ms": round((stopped - serving) * 1000, 1),
            # The new engine accepted on the same sockets before the old one stopped.
            "listener_gap_ms": round(max(0.0, serving - stopped) * 1000, 1),
            "target_groups": int(cp["target_groups"]), "targets": int(cp["targets"]),
            "events": int(cp["events"]), "seq": int(cp["seq"])}
        log.info("engine restarted %s", answer)
        return answer

    def _take_over(self, old: EngineClient, req: wire.CheckpointRequest,
                   snapshot: Callable[[], wire.Snapshot]
                   ) -> tuple[subprocess.Popen[bytes], int]:
        """Steps 2-3; on failure the old engine thaws and goes on."""
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc, port = self.spawn([wire.RESTORE_FLAG, req["state_file"],
                                     wire.HANDOVER_FLAG, req["handover"]])
            code, ans = EngineClient(port).call("POST", "/sync", snapshot())
            if code != 200 or (ans or {}).get("bind_failed"):
                raise RestartFailed(f"new engine refused the snapshot: {code} {ans}")
            return proc, port
        except BaseException as exc:
            log.exception("engine restart failed; the old engine goes on")
            if proc is not None:
                _stop(proc)
            old.call("POST", "/thaw")
            if isinstance(exc, RestartFailed):
                raise
            raise RestartFailed(f"new engine did not start: {exc}") from exc

    def _finish(self, proc: subprocess.Popen[bytes], old: EngineClient,
                client: EngineClient) -> None:
        """Step 5, off the request thread: the old engine may drain for a while."""
        try:
            code, ans = EngineClient(old.port, timeout=wire.RETIRE_LIMIT + 30).call(
                "POST", "/drained")
            events = ans.get("events") if code == 200 and ans else None
            if events:
                client.call("POST", "/events/import", {"events": events})
        except OSError:
            log.exception("old engine pid=%s: drain not confirmed", proc.pid)
        finally:
            _stop(proc)
            self._retiring.discard(proc)

    def stop(self) -> None:
        for proc in [self.proc, *self._retiring]:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """An engine exits when its stdin closes."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
