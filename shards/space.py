"""Out of space (ENOSPC, EDQUOT): one error that says where, how much, what was kept and
how to go on, instead of a traceback and half-written files.

Every writer of the project turns a full disk or quota into `OutOfSpace`, which names the
file and the bytes that file needed (when known) beside what its filesystem has free. The
commands print it as one line with what their run kept and exit with `EXIT_OUT_OF_SPACE`
(28, ENOSPC's own number), apart from click's 2 for a usage error and 1 for other errors,
so a script can tell "free some space and rerun" from "fix the command".

A failure inside a Beam worker reaches the driver as text only (the runner wraps it in
its own exception), so `find_out_of_space` also reads the error back from that text: the
`[Errno N] ...: 'path'` form Python gives an OSError with a filename, which `OutOfSpace`
keeps, with the bytes after it. Nothing here imports Beam, torch or click at module level.
"""
from __future__ import annotations

import errno
import os
import re
import shutil

OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
EXIT_OUT_OF_SPACE = 28  # ENOSPC; click uses 2 for usage errors and 1 for the rest


class OutOfSpace(OSError):
    """No room to write `filename`: `needed` bytes for the whole file, `free` on its filesystem
    (each None when unknown, e.g. on an object store).

    Its arguments are OSError's own (errno, strerror, filename), so it pickles like one."""

    # what the run keeps and how to go on, set by the code that knows (the command's driver)
    kept = "every file written before, whole (temp files removed)"
    rerun = "run the same command again"
    exit_code = EXIT_OUT_OF_SPACE

    def __init__(self, err: int, strerror: str, filename: str, needed: int | None = None, free: int | None = None) -> None:
        super().__init__(err, strerror, filename)
        self.needed = needed
        self.free = free

    def __str__(self) -> str:
        known = [f"needs {self.needed} bytes"] if self.needed is not None else []
        known += [f"{self.free} free"] if self.free is not None else []
        return f"[Errno {self.errno}] {self.strerror}: '{self.filename}'" + (f" ({', '.join(known)})" if known else "")

    def line(self) -> str:
        """The one line a command prints: where, how much, what is kept, how to go on."""
        sizes = []
        if self.needed is not None:
            sizes.append(f"needs {human_bytes(self.needed)}")
        if self.free is not None:
            sizes.append(f"{human_bytes(self.free)} free")
        where = f"{self.filename}" + (f" ({', '.join(sizes)})" if sizes else "")
        return f"out of space ({self.strerror.lower()}) writing {where}; kept: {self.kept}; free some space, then {self.rerun}"


def is_out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE_ERRNOS


def free_bytes(path: str) -> int | None:
    """Free bytes for an unprivileged writer on the filesystem holding local `path` (or its
    nearest existing parent); None for URLs or when it cannot be told."""
    if "://" in path:
        return None
    here = os.path.abspath(path)
    while not os.path.exists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    try:
        return shutil.disk_usage(here).free
    except OSError:
        return None


def out_of_space(exc: OSError, path: str, needed: int | None = None) -> OutOfSpace:
    """`exc` (ENOSPC or EDQUOT) as OutOfSpace for `path`, with its filesystem's free bytes."""
    return OutOfSpace(exc.errno, exc.strerror or os.strerror(exc.errno), path, needed, free_bytes(path))


_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^\n:]+): '([^'\n]+)'(?: \(needs (\d+) bytes(?:, (\d+) free)?\))?")


def find_out_of_space(exc: BaseException, where: str = "?") -> OutOfSpace | None:
    """The out-of-space error behind `exc`, if that is what it is: found in its chain of
    causes, or, for a runner that hands a worker's failure back as text, in its message.
    `where` stands for the file when the error names none (a write to an open file)."""
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OutOfSpace):
            return link
        if is_out_of_space(link):
            return out_of_space(link, str(link.filename or where))  # type: ignore[arg-type]
        link = link.__cause__ or link.__context__
    found = [m for m in _ERRNO_TEXT.finditer(str(exc)) if int(m[1]) in OUT_OF_SPACE_ERRNOS]
    if not found:
        return None
    err, strerror, path, needed, free = found[-1].groups()
    return OutOfSpace(int(err), strerror, path, int(needed) if needed else None,
                      int(free) if free else free_bytes(path))


def mentions_out_of_space(text: str) -> bool:
    """True when `text` (a log record, a relayed traceback) reports an out-of-space error."""
    return any(int(m[1]) in OUT_OF_SPACE_ERRNOS for m in _ERRNO_TEXT.finditer(text)) or any(
        f"[Errno {n}]" in text for n in OUT_OF_SPACE_ERRNOS)


def write_file(path: str, data: bytes) -> None:
    """Write a local file whole or not at all: `path`.tmp, then a rename. On any failure the
    temp file is removed and `path` keeps what it held; a full disk raises OutOfSpace."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        if is_out_of_space(exc):
            raise out_of_space(exc, path, len(data)) from exc
        raise


def remove_quietly(path: str) -> None:
    """Remove a local file that may not exist (a temp file after a failed write)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def human_bytes(n: int) -> str:
    """1234567 -> "1.2 MB" (decimal units, as `df -H` shows them)."""
    if n < 1000:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000:
            break
    return f"{size:.1f} {unit}"


def exit_error(message: str, exit_code: int) -> Exception:
    """A click error printing `Error: message` and exiting with `exit_code` (click is
    imported here, not at module level, so library users of `shards` do not need it)."""
    import click

    error = click.ClickException(message)
    error.exit_code = exit_code
    return error
