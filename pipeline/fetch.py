"""A video's file made ready for ffmpeg (a local path, its size known, readable), under the
per-video timeout.

Stat, open, and the local copy of a remote object are blocking calls that can wait for
ever: a stalled network mount, an object store that stops sending. A thread stuck in a
kernel read cannot be killed, so the step runs in a daemon thread and the worker gives up
waiting after `timeout_s`: the video becomes one `timeout` record, the thread is left
behind, and the worker goes on with the next video. (Decoding has its own limit: ffmpeg is
killed after `timeout_s`, see `keyframes`.)

Beam's FileSystems opens remote objects and is imported for them alone (`object_store`), so
local paths need no Beam: `detect` lists and reads local videos from the `detect` extra.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class NotAFile(OSError):
    """A FIFO, socket, device or directory where a video file was expected."""


class NeedsBeam(ValueError):
    """A remote URL (`gs://`, any other Beam filesystem scheme) on an install without
    apache-beam, such as the `detect` extra's: local paths would have worked."""


def object_store(url: str) -> Any:
    """Beam's `FileSystems`, which opens `url`: imported only when a URL is met."""
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError as e:
        raise NeedsBeam(f"{url}: reading remote URLs needs apache-beam, which is not installed: "
                        "pip install 'noisetrace[dataflow]', or use local paths") from e
    return FileSystems


def within(timeout_s: float, step: Callable[[], T], what: str) -> T:
    """`step()`'s result, or `TimeoutError` when it has not returned after `timeout_s`.

    A plain daemon thread, not a `ThreadPoolExecutor`: the executor's threads are joined
    when the interpreter exits, so one stuck read would keep the process (a worker process,
    or the driver whose threads the local workers are) alive for ever; a daemon thread is
    abandoned.
    """
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = step()
        except BaseException as e:  # handed to the caller, who decides what it means
            outcome["error"] = e
        finally:
            finished.set()

    threading.Thread(target=run, name=f"noisetrace {what}", daemon=True).start()
    if not finished.wait(timeout_s):
        raise TimeoutError(f"{what} took longer than {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def require_regular(path: str) -> None:
    """Raise NotAFile unless the local `path` is a regular file, judged by its stat alone:
    opening a FIFO would wait for a writer for ever."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise NotAFile(f"{kind}, not a regular file")


def readable_size(path: str) -> int:
    """The file's size, after proving it can be read: opening it raises the error that
    names why not (FileNotFoundError when it vanished after listing, PermissionError, or
    OSError for a link loop), which ffmpeg would only report as exit 1. Anything but a
    regular file is refused from its stat, before an open() that could block forever (a
    FIFO waits for a writer)."""
    require_regular(path)
    with open(path, "rb") as f:
        f.read(1)
        return os.fstat(f.fileno()).st_size


def _download(url: str, fd: int) -> None:
    """Copy a remote object into the open file `fd` (closed here)."""
    filesystems = object_store(url)
    with os.fdopen(fd, "wb") as out:
        if not filesystems.exists(url):
            # Object stores raise their own error types for a missing object (GCS: NotFound,
            # not an OSError), which would fail the bundle instead of recording the video.
            raise FileNotFoundError(url)
        with filesystems.open(url) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)


@contextlib.contextmanager
def fetched(path: str, timeout_s: float) -> Iterator[tuple[str, int]]:
    """(a local path for ffmpeg, its size): the file itself, or a temp copy of a remote
    object, deleted on exit. Raises `TimeoutError` when the stat and open, or the copy,
    take longer than `timeout_s`; the OSErrors of `readable_size` otherwise."""
    if "://" not in path:
        yield path, within(timeout_s, lambda: readable_size(path), "reading the file")
        return
    fd, tmp = tempfile.mkstemp(suffix=posixpath.splitext(path)[1], prefix="noisetrace-")
    try:
        # on a timeout the abandoned copy keeps writing to the unlinked temp file until its read returns
        within(timeout_s, lambda: _download(path, fd), "copying the object")
        yield tmp, readable_size(tmp)
    finally:
        os.unlink(tmp)
