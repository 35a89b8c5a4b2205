"""One run at a time per output: the lock `build-shards` and `train-from-shards` take on
their `--output` before they write anything there.

Two runs into one folder interleave their files (shards of both, one's `_info.json` over
the other's shards) and both may exit 0, so the second run must stop before its first
write, saying which run holds the folder.

Local paths (and network mounts): `fcntl.flock` on `OUTPUT/.noisetrace.lock`, which holds
the owner (host, pid, command, start time) as JSON. The kernel drops the lock when its
process dies, however it dies, so a lock left by a SIGKILLed run is free to take; the next
run finds the dead owner's note still in the file, says it takes over, and goes on. A run
that ends removes the file (while still holding the lock; a waiting run then checks that
the file it locked is still the one at the path). Linux maps `flock` on NFS to POSIX locks,
so runs on two hosts sharing a mount exclude each other too.

Object stores (`gs://`, any other Beam filesystem scheme): no locks exist, and Beam's
FileSystems API has no create-if-absent (GCS's `ifGenerationMatch=0`), so the closest it
offers is used: a marker object checked, written, then read back after a pause, which
leaves only a narrow window in which two runs starting within that pause could both
proceed. The owner rewrites the marker every `HEARTBEAT_S`; a marker whose owner is a dead
process of this host, or whose heartbeat is older than `STALE_S`, is stale and taken over.
`NOISETRACE_LOCK_SETTLE_S`, `..._HEARTBEAT_S` and `..._STALE_S` change those timings.

Beam is imported only for object-store outputs, so the trainer can use this without it.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from shards.info import is_url

LOCK_NAME = ".noisetrace.lock"
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: try again later; apart from click's 1 and 2
# object stores: the marker's refresh interval, its age past which it is stale, and the
# pause between writing it and reading it back (each overridable by its environment variable)
HEARTBEAT_S, STALE_S, SETTLE_S = 60.0, 600.0, 2.0
ORPHAN_WAIT_S = 5.0  # a dead owner's forked children (DataLoader workers) may hold its lock this long


class OutputBusy(RuntimeError):
    """Another run holds the output; `line()` is what a command prints, `exit_code` its status."""

    exit_code = EXIT_BUSY

    def line(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Owner:
    """Who holds an output: what the refusal names, and what tells a stale lock."""

    command: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    heartbeat: float = field(default_factory=time.time)

    def describe(self) -> str:
        return f"{self.command} on host {self.host}, pid {self.pid}, started {self.started}"

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def loads(cls, data: bytes) -> Owner | None:
        """The owner in a lock file or marker; None for an empty or damaged one."""
        try:
            fields = json.loads(data.decode("utf-8"))
            return cls(**{k: fields[k] for k in ("command", "host", "pid", "started", "token", "heartbeat")})
        except (ValueError, KeyError, TypeError):
            return None

    def is_gone(self) -> bool:
        """True when this owner can no longer be running: a process of this host that has
        exited, or a heartbeat older than STALE_S."""
        if self.host == socket.gethostname() and not _alive(self.pid):
            return True
        return time.time() - self.heartbeat > _seconds("STALE_S", STALE_S)


def _seconds(name: str, default: float) -> float:
    """A timing of the object-store marker: `NOISETRACE_LOCK_<name>` or the default."""
    return float(os.environ.get(f"NOISETRACE_LOCK_{name}", default))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _busy(output: str, owner: Owner | None) -> OutputBusy:
    who = owner.describe() if owner else "another run (it has not written its name yet)"
    return OutputBusy(f"{output} is in use by {who}; wait for it to finish, or give another --output")


def _taken_over(output: str, owner: Owner | None, command: str) -> None:
    who = owner.describe() if owner else "a run that left no name"
    print(f"{command}: {output}: taking over the lock of {who}, which ended without releasing it", file=sys.stderr, flush=True)


@contextlib.contextmanager
def output_lock(output: str, command: str) -> Iterator[Owner]:
    """Hold `output` for the `with` block; raises OutputBusy at once when another run has it."""
    locker = _remote_lock if is_url(output) else _local_lock
    with locker(output, Owner(command)) as owner:
        yield owner


@contextlib.contextmanager
def _local_lock(output: str, me: Owner) -> Iterator[Owner]:
    path = output[len("file://"):] if output.startswith("file://") else output
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    lock_path = os.path.join(path, LOCK_NAME)
    fd = _acquire_local(output, lock_path)
    try:
        previous = Owner.loads(_read_all(fd))
        if previous is not None:
            _taken_over(output, previous, me.command)
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.dumps(), 0)
        yield me
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)  # still locked: a waiting run sees the file replaced and retries
        os.close(fd)
        if created:  # a run that stopped before writing (e.g. a bad --input) leaves no empty folder
            with contextlib.suppress(OSError):
                os.rmdir(path)


def _acquire_local(output: str, lock_path: str) -> int:
    """An fd of `lock_path`, flock'ed; OutputBusy when a live run holds it."""
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            owner = _owner_when_written(fd)
            os.close(fd)
            # a SIGKILLed owner's forked children hold its lock until they notice and exit
            if owner is not None and owner.host == socket.gethostname() and not _alive(owner.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise _busy(output, owner) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the owner removed the file as it released it: lock the new one


def _owner_when_written(fd: int) -> Owner | None:
    """The holder's note; a run that has just taken the lock may not have written it yet."""
    for _ in range(10):
        owner = Owner.loads(_read_all(fd))
        if owner is not None:
            return owner
        time.sleep(0.05)
    return None


def _read_all(fd: int) -> bytes:
    return os.pread(fd, 1 << 16, 0)


@contextlib.contextmanager
def _remote_lock(output: str, me: Owner) -> Iterator[Owner]:
    from apache_beam.io.filesystems import FileSystems  # object stores only

    marker = FileSystems.join(output, LOCK_NAME)
    found = _read_marker(marker)
    if found is not None and not found.is_gone():
        raise _busy(output, found)
    _write_marker(marker, me)
    time.sleep(_seconds("SETTLE_S", SETTLE_S))  # a run that checked at the same moment has written by now
    holder = _read_marker(marker)
    if holder is None or holder.token != me.token:
        raise _busy(output, holder)
    if found is not None:
        _taken_over(output, found, me.command)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(marker, me, stop), name="noisetrace lock", daemon=True)
    beat.start()
    try:
        yield me
    finally:
        stop.set()
        beat.join()
        holder = _read_marker(marker)
        if holder is not None and holder.token == me.token:
            FileSystems.delete([marker])


def _heartbeat(marker: str, me: Owner, stop: threading.Event) -> None:
    while not stop.wait(_seconds("HEARTBEAT_S", HEARTBEAT_S)):
        _write_marker(marker, Owner(me.command, me.host, me.pid, me.started, me.token))


def _read_marker(marker: str) -> Owner | None:
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(marker):
        return None
    try:
        with FileSystems.open(marker) as f:
            return Owner.loads(f.read())
    except Exception:  # deleted between the check and the read: object stores raise their own types
        return None


def _write_marker(marker: str, owner: Owner) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(marker) as f:
        f.write(owner.dumps())
