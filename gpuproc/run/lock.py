"""Who owns an output: a lock file ``<output>.lock`` next to a results or ingest store.

The file (JSON) names its holder: process id, host, start time, the job hash and the route
("process": a run or an ingest in one process; "array": a SLURM job array, held from
``prepare`` until ``finalize``). While a process holds a lock it refreshes the file's
modification time every :data:`REFRESH_S` seconds. A second run on the same output is refused
with a message naming the holder. A lock is stale, and is taken over with a warning, when

- its process is gone (same host; a reused process id is told apart by its start time), or
- it was not refreshed for :data:`STALE_AFTER_S` seconds (another host, e.g. a shared file
  system), or, for a job-array lock (which no process refreshes: its tasks may wait in the
  queue), :data:`ARRAY_STALE_AFTER_S` seconds after ``prepare`` took it.

Dask workers and array tasks of a run share its lock: they never take or check it (they attach
to the results store, which refuses a job whose configuration or inputs differ from the run's).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REFRESH_S = 60.0  #: seconds between refreshes of a held lock's modification time
STALE_AFTER_S = 900.0  #: a process lock of another host not refreshed for this long is stale
ARRAY_STALE_AFTER_S = 86400.0  #: a job-array lock older than this is stale (tasks may wait in the queue)


class OutputLocked(OSError):
    """The output is owned by another live run or ingest."""


@dataclass(frozen=True)
class Holder:
    """What a lock file records."""

    pid: int
    host: str
    started: str  #: ISO 8601 UTC
    job_hash: str
    route: str = "process"  #: "process" | "array"
    token: str = ""  #: unique per acquisition
    pid_start: str = ""  #: the process's start time (Linux /proc), to tell a reused pid apart

    def describe(self) -> str:
        what = "a SLURM job-array run prepared by" if self.route == "array" else "gpuproc"
        return f"{what} pid {self.pid} on {self.host}, started {self.started} (job {self.job_hash})"


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: ``<output>.lock`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


def _process_start(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(holder: Holder) -> bool:
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not holder.pid_start or _process_start(holder.pid) in ("", holder.pid_start)


_held: dict[Path, tuple[str, int]] = {}  # lock file -> (token, thread id) held by this process
_held_lock = threading.Lock()
_refresher: threading.Thread | None = None
_stop = threading.Event()  # waited on between refreshes: a time.sleep() here hung LocalCluster starts


def _refresh_forever() -> None:
    while not _stop.wait(REFRESH_S):
        with _held_lock:
            paths = list(_held)
        for p in paths:
            with contextlib.suppress(OSError):
                os.utime(p)


def _read(path: Path) -> tuple[Holder | None, float]:
    """The holder recorded in ``path`` and its age in seconds (None if absent or unreadable)."""
    try:
        age = time.time() - path.stat().st_mtime
        return Holder(**json.loads(path.read_text())), age
    except FileNotFoundError:
        return None, 0.0
    except (OSError, ValueError, TypeError):
        return Holder(-1, "?", "?", "?", token="unreadable"), age


def _stale(path: Path, holder: Holder, age: float) -> str | None:
    """Why ``holder`` no longer owns the lock ``path``, or None while it does."""
    if holder.token == "unreadable":
        return "unreadable lock file" if age > STALE_AFTER_S else None
    if holder.route == "array":
        return f"not refreshed for {age:.0f} s" if age > ARRAY_STALE_AFTER_S else None
    if holder.host != socket.gethostname():
        return f"not refreshed for {age:.0f} s" if age > STALE_AFTER_S else None
    if holder.pid != os.getpid():
        return None if _alive(holder) else "its process is gone"
    with _held_lock:
        token, thread = _held.get(path, ("", 0))
    busy = token == holder.token and thread != threading.get_ident() and any(
        t.ident == thread and t.is_alive() for t in threading.enumerate())
    return None if busy else "left by an earlier, failed attempt of this process"


def _new_holder(job_hash: str, route: str) -> Holder:
    return Holder(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), job_hash,
                  route, uuid.uuid4().hex, _process_start(os.getpid()))


def _link(path: Path, holder: Holder) -> bool:
    """Create ``path`` holding ``holder`` atomically; False if it exists."""
    tmp = path.with_name(f"{path.name}.{holder.token}.tmp")
    tmp.write_text(json.dumps(asdict(holder)))
    try:
        os.link(tmp, path)  # atomic, and fails if the lock exists (also on NFS)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def acquire(output: Path, job_hash: str, *, route: str = "process", take_same_job: bool = False) -> Holder:
    """Take the lock of ``output``.

    Parameters
    ----------
    output : Path
        The results or ingest store.
    job_hash : str
        Identity of the job (:func:`gpuproc.run.settings.job_hash`).
    route : {"process", "array"}
        "array": a job-array run; the lock stays after this process ends, until :func:`release`.
    take_same_job : bool
        Take over a job-array lock of the same job (a re-``prepare``, or a local run finishing
        an array's blocks).

    Raises
    ------
    OutputLocked
        Another live run or ingest holds it; the message names the holder.
    """
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _new_holder(job_hash, route)
    for _ in range(10):
        if _link(path, holder):
            break
        current, age = _read(path)
        if current is None:
            continue  # released meanwhile
        why = _stale(path, current, age)
        if why is None and take_same_job and current.route == "array" and current.job_hash == job_hash:
            why = ""
        if why is None:
            raise OutputLocked(f"{output}: in use by {current.describe()}; wait for it to finish, or remove "
                               f"{path} if that run is gone")
        if why:
            warnings.warn(f"{output}: taking over the lock of {current.describe()}: {why}", stacklevel=2)
        _take_over(path, current, holder)
        break
    else:
        raise OutputLocked(f"{output}: could not take {path} (other processes competing for it)")
    with _held_lock:
        if route == "process":
            _held[path] = (holder.token, threading.get_ident())
            global _refresher
            if _refresher is None:
                _refresher = threading.Thread(target=_refresh_forever, name="gpuproc-lock-refresh", daemon=True)
                _refresher.start()
    return holder


def _take_over(path: Path, stale: Holder, holder: Holder) -> None:
    """Replace the stale lock ``stale`` by ``holder``, unless another process got there first."""
    aside = path.with_name(f"{path.name}.{holder.token}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        pass
    else:
        moved, _ = _read(aside)
        if moved is not None and moved.token != stale.token:  # a fresh lock of a faster process: put it back
            restored = _relink(aside, path)
            aside.unlink(missing_ok=True)
            if restored:
                raise OutputLocked(f"{path}: taken by {moved.describe()} meanwhile")
        aside.unlink(missing_ok=True)
    if not _link(path, holder):
        current, _ = _read(path)
        raise OutputLocked(f"{path}: taken by {current.describe() if current else 'another process'} meanwhile")


def _relink(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
        return True
    except FileExistsError:
        return False


def release(output: Path, holder: Holder | None = None, *, job_hash: str | None = None) -> None:
    """Remove the lock of ``output`` if it is ``holder``'s (or, with ``job_hash``, any lock of that
    job: the end of a job array)."""
    path = lock_path(output)
    current, _ = _read(path)
    ours = current is not None and ((holder is not None and current.token == holder.token)
                                    or (job_hash is not None and current.job_hash == job_hash))
    if ours:
        path.unlink(missing_ok=True)
    if holder is not None:
        with _held_lock:
            _held.pop(path, None)


@contextlib.contextmanager
def holding(output: Path, job_hash: str, *, route: str = "process", take_same_job: bool = False) -> Iterator[Holder]:
    """Hold the lock of ``output`` for the block's duration (a job-array lock stays after it,
    unless the block fails)."""
    holder = acquire(output, job_hash, route=route, take_same_job=take_same_job)
    try:
        yield holder
    except BaseException:
        release(output, holder)
        raise
    if route == "process":
        release(output, holder)
