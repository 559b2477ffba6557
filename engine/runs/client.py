"""Talking to the runs service (:mod:`engine.runs.service`): finding it, starting it, asking it.

:func:`connect` finds the service of a home through its socket and starts one when there is none
(the first command that needs it starts it: ``dllab run --detach``, ``dllab ps`` only asks). A
stale service (a socket or pid file left by a process that is gone) is noticed and replaced. The
service is started in a session of its own, its output in ``service.log`` in the home.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.runs.service import LOG_NAME, MAX_MESSAGE, PID_NAME, SOCKET_NAME, read_line, secure_home
from engine.runs.store import pid_alive

START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 30.0


class ServiceError(RuntimeError):
    """The runs service could not be reached, started, or refused a request (the text says which)."""


class ServiceClient:
    """Requests to the service of one home."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.socket_path = self.home / SOCKET_NAME

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request, one answer; ServiceError when the service cannot be reached or refuses."""
        message = json.dumps({"op": op, **fields}).encode() + b"\n"
        if len(message) > MAX_MESSAGE:
            raise ServiceError(f"the request is over {MAX_MESSAGE >> 20} MiB")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(REQUEST_TIMEOUT_S)
                conn.connect(str(self.socket_path))
                try:
                    conn.sendall(message)
                except BrokenPipeError:  # refused before it read the request: its answer says why
                    pass
                answer = json.loads(read_line(conn))
        except (OSError, ValueError) as exc:
            raise ServiceError(f"the runs service at {self.socket_path} did not answer ({exc})") from None
        if not answer.get("ok"):
            raise ServiceError(str(answer.get("error", "the runs service refused the request")))
        return answer

    def reachable(self) -> bool:
        try:
            self.request("ping")
        except ServiceError:
            return False
        return True

    # -- what clients ask --------------------------------------------------------------------------

    def submit(self, specs: list[Any], *, device: str = "auto", workers: int | None = None,
               threads: int | None = None, batch: bool = True, fast: str = "", comparison: str | None = None,
               run_ids: list[str] | None = None) -> dict[str, Any]:
        return self.request("submit", specs=[s.model_dump(mode="json") for s in specs], device=device,
                            workers=workers, threads=threads, batch=batch, fast=fast, comparison=comparison,
                            run_ids=run_ids)

    def ps(self) -> list[dict[str, Any]]:
        return list(self.request("ps")["comparisons"])

    def cancel(self, target: str) -> dict[str, Any]:
        return self.request("cancel", id=target)

    def resume(self, run_id: str) -> dict[str, Any]:
        """A stopped run goes on from its checkpoint in the service (``dllab resume RUN --detach``)."""
        return self.request("resume", id=run_id)

    def stop(self) -> None:
        self.request("stop")


def running_service(home: Path) -> ServiceClient | None:
    """The home's service when one answers, else None (nothing is started)."""
    client = ServiceClient(home)
    return client if client.socket_path.exists() and client.reachable() else None


def connect(home: Path, timeout: float = START_TIMEOUT_S) -> ServiceClient:
    """The home's service, started when none answers.

    A service holds the home's lock for its life (:meth:`engine.runs.service.Service.claim`), so
    starting one while another starts (or runs) is harmless: the second exits at once and this
    client waits for the first to answer. A stale socket left by a killed service is replaced by
    the new service when it binds."""
    home = secure_home(Path(home))
    client = ServiceClient(home)
    if client.socket_path.exists() and client.reachable():
        return client
    with open(home / LOG_NAME, "ab") as log:
        subprocess.Popen([sys.executable, "-m", "engine.runs.service", "--home", str(home)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         close_fds=True, env={**os.environ, "DLLAB_HOME": str(home)})  # cwd kept: a relative PYTHONPATH works
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.socket_path.exists() and client.reachable():
            return client
        time.sleep(0.05)
    raise ServiceError(f"the runs service did not start within {timeout:.0f} s; see {home / LOG_NAME}")


def service_pid(home: Path) -> int | None:
    """The pid the home's service wrote, when that process is alive."""
    try:
        pid = int((Path(home) / PID_NAME).read_text())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


class ServiceRunner:
    """A comparison handed to the runs service, runner-shaped for the app: ``start`` submits it,
    ``poll`` follows it through the store (:class:`engine.runs.follow.StoreFollower`), ``cancel``
    reaches the service, ``close`` stops following and leaves the runs going (the app asks before
    it quits whether to cancel them)."""

    detached = True
    """Its runs belong to the runs service, not to the process that follows them."""

    def __init__(self, specs: list[Any], *, home: Path, store: Any, device: str = "auto",
                 workers: int | None = None, threads: int | None = None) -> None:
        from engine.runs.comparison import new_run_ids, with_comparison

        self.client = connect(home)  # ServiceError when it cannot start: the caller falls back
        self.comparison, self.specs = with_comparison(list(specs), None)
        self.run_ids = new_run_ids(len(self.specs))
        self.store, self.device, self.workers, self.threads = store, device, workers, threads
        self._follower: Any = None
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        from engine.runs.follow import StoreFollower

        answer = self.client.submit(self.specs, device=self.device, workers=self.workers, threads=self.threads,
                                    comparison=self.comparison, run_ids=self.run_ids)
        self.run_ids = list(answer["run_ids"])
        self._follower = StoreFollower(self.store, self.run_ids, self.cancel)

    def poll(self, timeout: float = 0.1) -> list[Any]:
        if not self._started:
            self.start()
        return self._follower.poll(timeout)

    def cancel(self, run_id: str | None = None) -> None:
        try:
            self.client.cancel(run_id or self.comparison)
        except ServiceError:
            pass  # it ended meanwhile

    def close(self, timeout: float = 5.0) -> None:
        if self._follower is not None:
            self._follower.close()

    @property
    def finished(self) -> bool:
        return self._follower is not None and self._follower.finished
