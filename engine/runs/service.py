"""The runs service: one background process per ``$DLLAB_HOME`` that runs comparisons for its clients.

A comparison handed to the service (``dllab run --detach``; the app later) trains in the service's
own worker processes, through the same Runner and executor as a foreground run, so it outlives the
terminal that started it: the service runs in a session of its own (``start_new_session``), so a
closed terminal, a hangup or the app quitting does not reach it. The store stays the record of
truth: the workers write every event there, and a client follows a comparison by reading it
(:mod:`engine.runs.follow`); the socket only carries requests.

The protocol is one JSON object per line, one request per connection, answered by one JSON line:
``{"op": "ping"}``, ``{"op": "submit", "specs": [...], ...}``, ``{"op": "ps"}``,
``{"op": "cancel", "id": ...}``, ``{"op": "stop"}``. Every answer has ``"ok"``; a refusal has
``"error"`` in plain words.

Private to its user: the service listens only on a Unix socket inside the home (the home 0700,
the socket 0600), never on a network port; a peer whose user id is not the service's, a message
over :data:`MAX_MESSAGE` bytes or one that is not a well-formed request is refused and logged, and
the service keeps running. It stops by itself after :data:`IDLE_S` seconds with no live
comparison and no request (``DLLAB_SERVICE_IDLE`` overrides it).

Written here rather than taken from a library: the standard library's ``socketserver`` gives the
accept loop but not the peer check, the size cap or the idle stop, which are most of this file.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOCKET_NAME = "service.sock"
PID_NAME = "service.pid"
LOCK_NAME = "service.lock"
LOG_NAME = "service.log"
MAX_MESSAGE = 16 << 20
"""Bytes a request may take (a comparison's specs as JSON: a few KiB a run)."""
IDLE_S = 600.0
"""Seconds with no live comparison and no request before the service stops by itself."""
READ_TIMEOUT_S = 10.0

log = logging.getLogger("dllab.service")


def idle_seconds() -> float:
    try:
        return max(0.5, float(os.environ.get("DLLAB_SERVICE_IDLE", IDLE_S)))
    except ValueError:
        return IDLE_S


def secure_home(home: Path) -> Path:
    """The home, created if needed, readable by its user alone (0700)."""
    home.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(home, 0o700)
    return home


def peer_uid(conn: socket.socket) -> int | None:
    """The user id of the process at the other end of a Unix socket (None where the system cannot say)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def read_line(conn: socket.socket, limit: int = MAX_MESSAGE) -> bytes:
    """One line from the socket (without its newline); ValueError past `limit` bytes or on EOF first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            if chunks:
                break  # a last line without its newline
            raise ValueError("the connection closed before a request arrived")
        end = chunk.find(b"\n")
        if end >= 0:
            chunks.append(chunk[:end])
            size += end
            if size > limit:
                raise ValueError(f"the message is over {limit} bytes")
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError(f"the message is over {limit} bytes")
    return b"".join(chunks)


@dataclass
class Live:
    """A comparison the service runs: its runner and the thread that drains it."""

    key: str
    """The comparison's id (a resumed run: the comparison's id and the run's)."""
    preset: str
    runner: Any
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.time)
    error: str = ""

    def summary(self) -> dict[str, Any]:
        runner = self.runner
        ended = sum(1 for run_id in runner.run_ids if runner.status(run_id) not in ("pending", "running"))
        running = sum(1 for run_id in runner.run_ids if runner.status(run_id) == "running")
        return {"comparison": runner.comparison, "preset": self.preset, "runs": len(runner.run_ids),
                "ended": ended, "running": running, "started": self.started, "device": runner.device,
                "run_ids": list(runner.run_ids)}


class Service:
    """The server: accepts one request per connection, runs comparisons, stops when idle."""

    def __init__(self, home: Path, idle_s: float | None = None) -> None:
        self.home = secure_home(Path(home))
        self.socket_path = self.home / SOCKET_NAME
        self.pid_path = self.home / PID_NAME
        self.idle_s = idle_seconds() if idle_s is None else idle_s
        self.handling = 0
        """Requests being answered now (a slow one, a first submit that imports torch, keeps it up)."""
        self.live: dict[str, Live] = {}
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.stopping = threading.Event()
        self.uid = os.getuid()
        self.context: Any = None
        """Where workers start from: a warm forkserver (torch imported) once it is up, else spawn."""

    # -- lifecycle -------------------------------------------------------------------------------

    def claim(self) -> bool:
        """Hold the home's service lock for this process's life: one service per home. The system
        releases it when the process ends, however it ends, so a killed service leaves no claim."""
        self._lock_file = open(self.home / LOCK_NAME, "a")  # noqa: SIM115 - held until the process exits
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            return False
        return True

    def bind(self) -> socket.socket:
        """Listen on the home's socket (0600), replacing a stale one; write the pid file."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(str(self.socket_path))
        finally:
            os.umask(old)
        os.chmod(self.socket_path, 0o600)
        server.listen(16)
        server.settimeout(0.2)
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, self.pid_path)
        return server

    def serve(self) -> None:
        if not self.claim():
            log.info("another runs service holds %s: this one (%d) exits", self.home / LOCK_NAME, os.getpid())
            return
        server = self.bind()
        threading.Thread(target=self._warm_up, name="dllab-warm-up", daemon=True).start()
        log.info("runs service %d listening on %s (idle stop after %.0f s)", os.getpid(), self.socket_path,
                 self.idle_s)
        try:
            while not self.stopping.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    if self.idle():
                        log.info("idle for %.0f s with no runs: stopping", self.idle_s)
                        break
                    continue
                threading.Thread(target=self.handle, args=(conn,), name="dllab-service-conn", daemon=True).start()
        finally:
            server.close()
            self.shutdown()

    def _warm_up(self) -> None:
        """Start the warm forkserver (a worker ready to fork, torch imported); spawn until it is up."""
        from engine.runs.runner import warm_context

        try:
            started = time.monotonic()
            self.context = warm_context()
            import engine.batched.plan  # noqa: F401 - torch: the first comparison's plan does not wait for it

            log.info("warm workers ready in %.1f s", time.monotonic() - started)
        except Exception:  # noqa: BLE001 - cold workers (spawn) still work
            log.exception("no warm workers: comparisons start cold")

    def idle(self) -> bool:
        with self.lock:
            self._reap()
            busy = bool(self.live) or self.handling > 0  # a request being answered is not idleness
        return not busy and time.monotonic() - self.last_activity > self.idle_s

    def shutdown(self) -> None:
        """Cancel and close every runner; remove the socket and the pid file (if they are ours)."""
        with self.lock:
            lives = list(self.live.values())
        for live in lives:
            with contextlib.suppress(Exception):
                live.runner.close(timeout=5.0)
        for live in lives:
            if live.thread is not None:
                live.thread.join(10.0)
        with contextlib.suppress(OSError, ValueError):
            if int(self.pid_path.read_text()) == os.getpid():
                self.pid_path.unlink()
                self.socket_path.unlink()
        log.info("runs service %d stopped", os.getpid())

    def _reap(self) -> None:
        for key in [k for k, live in self.live.items() if live.thread is not None and not live.thread.is_alive()]:
            del self.live[key]

    # -- one connection --------------------------------------------------------------------------

    def handle(self, conn: socket.socket) -> None:
        with self.lock:
            self.handling += 1
        try:
            self._handle(conn)
        finally:
            with self.lock:
                self.handling -= 1
            self.last_activity = time.monotonic()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT_S)
            try:
                uid = peer_uid(conn)
                if uid is not None and uid != self.uid:
                    log.warning("refused a connection from user id %d (the service's is %d)", uid, self.uid)
                    self._answer(conn, {"ok": False, "error": "this runs service belongs to another user"})
                    return
                raw = read_line(conn)
                try:
                    request = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
                if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                    raise ValueError("a request is a JSON object with an 'op'")
                answer = self.dispatch(request)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("refused a request: %s", str(exc)[:300])
                answer = {"ok": False, "error": f"refused: {str(exc)[:300]}"}
            except OSError as exc:
                log.warning("connection error: %s", exc)
                return
            except Exception as exc:  # noqa: BLE001 - a bad request must never take the service down
                log.exception("request failed")
                answer = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            self.last_activity = time.monotonic()
            with contextlib.suppress(OSError):
                self._answer(conn, answer)

    @staticmethod
    def _answer(conn: socket.socket, answer: dict[str, Any]) -> None:
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "ping":
            with self.lock:
                self._reap()
                return {"ok": True, "pid": os.getpid(), "live": len(self.live)}
        if op == "submit":
            return self.submit(request)
        if op == "ps":
            with self.lock:
                self._reap()
                return {"ok": True, "comparisons": [live.summary() for live in self.live.values()]}
        if op == "cancel":
            return self.cancel(str(request["id"]))
        if op == "resume":
            return self.resume(str(request["id"]))
        if op == "stop":
            self.stopping.set()
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")

    # -- the work --------------------------------------------------------------------------------

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a comparison: its specs validated, its runs registered pending, its workers started."""
        from engine.recipe.config import RunSpec
        from engine.runs.runner import Runner

        raw_specs = request["specs"]
        if not isinstance(raw_specs, list) or not raw_specs:
            raise ValueError("'specs' must be a non-empty list of run specs")
        specs = [RunSpec.model_validate(s) for s in raw_specs]
        workers, threads, run_ids = request.get("workers"), request.get("threads"), request.get("run_ids")
        runner = Runner(specs, device=str(request.get("device", "auto")),
                        workers=int(workers) if workers else None, threads=int(threads) if threads else None,
                        store=self.home, comparison=request.get("comparison") or None,
                        batch=bool(request.get("batch", True)), fast=str(request.get("fast", "")),
                        run_ids=[str(r) for r in run_ids] if run_ids else None, context=self.context)
        return self._start(Live(runner.comparison, specs[0].preset, runner), len(specs))

    def _start(self, live: Live, n: int) -> dict[str, Any]:
        runner = live.runner
        with self.lock:
            if live.key in self.live:
                raise ValueError(f"{live.key} is already running")
            self.live[live.key] = live
        runner.start()
        live.thread = threading.Thread(target=self._drain, args=(live,), name=f"dllab-{live.key}", daemon=True)
        live.thread.start()
        log.info("comparison %s: %d runs of %s started", live.key, n, live.preset)
        return {"ok": True, "comparison": runner.comparison, "run_ids": list(runner.run_ids)}

    def resume(self, run_id: str) -> dict[str, Any]:
        """A stopped run (with its batched group, when it trained in one) goes on from its checkpoint
        in this service's workers (``engine.runs.resume``)."""
        from engine.runs.resume import reopen
        from engine.runs.runner import Runner
        from engine.runs.store import RunStore

        with self.lock:
            self._reap()
            live_runs = {r for live in self.live.values() for r in live.runner.run_ids}
        with RunStore(self.home) as store:
            row = store.get_run(run_id)
            unit = reopen(row, store, live_runs)
        runner = Runner(list(unit.specs), device=row.device or "auto", workers=1, store=self.home,
                        comparison=row.comparison, run_ids=list(unit.run_ids), context=self.context,
                        resume=unit.resume)
        return self._start(Live(f"{row.comparison}:{row.run_id}", row.preset, runner), len(unit.specs))

    def _drain(self, live: Live) -> None:
        """Read the runner's events until every run ended (the workers already stored them)."""
        try:
            for _ in live.runner.events():
                pass
        except Exception as exc:  # noqa: BLE001 - the runs end in the store either way
            live.error = str(exc)
            log.exception("comparison %s", live.key)
        finally:
            with contextlib.suppress(Exception):
                live.runner.close()
            self.last_activity = time.monotonic()
            log.info("comparison %s ended", live.key)

    def cancel(self, target: str) -> dict[str, Any]:
        """Cancel a comparison (by id or unique prefix) or one run of a live comparison."""
        with self.lock:
            lives = list(self.live.values())
        for live in lives:
            comparison = live.runner.comparison
            if comparison == target:
                live.runner.cancel()
                return {"ok": True, "cancelled": len(live.runner.run_ids), "comparison": comparison}
            if target in live.runner.run_ids:
                live.runner.cancel(target)
                return {"ok": True, "cancelled": 1, "comparison": comparison}
        matches = [live for live in lives if target and live.runner.comparison.startswith(target)]
        if len(matches) == 1:
            matches[0].runner.cancel()
            return {"ok": True, "cancelled": len(matches[0].runner.run_ids), "comparison": matches[0].runner.comparison}
        return {"ok": False, "error": f"no live comparison or run {target!r} in the runs service"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.runs.service")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    home = secure_home(Path(args.home))
    logging.basicConfig(filename=str(home / LOG_NAME), level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    os.environ["DLLAB_HOME"] = str(home)
    import engine.runs.store as store

    store.OWNER_KIND = "the runs service"  # the reason a run of a killed service gives
    Service(home).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
