"""Atomic, byte-reproducible tar shard writing.

A shard is written under a temporary name in its final directory and renamed only when
complete, so a crash or a retried Beam bundle never leaves a partial `pairs-*.tar` behind.
Every tar header field that could vary between runs (mtime, owner, mode) is fixed, and
samples are written sorted by key, so the same samples always give the same bytes.
The file operations are injectable so the pipeline can write through Beam's FileSystems
(`gs://` and friends) without this package importing Beam.
"""
from __future__ import annotations

import contextlib
import io
import os
import tarfile
import uuid
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from shards.space import is_out_of_space, out_of_space, remove_quietly


class TarSample(Protocol):
    """What a shard holds per sample: a key and its tar members (`PairSample`, `RawSample`)."""

    @property
    def key(self) -> str: ...

    def to_members(self) -> list[tuple[str, bytes]]: ...


FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: constant so reruns are byte-identical
SHARD_PATTERN = "pairs-{index:06d}.tar"

Opener = Callable[[str], BinaryIO]
Renamer = Callable[[str, str], None]
Remover = Callable[[str], None]


def shard_name(index: int) -> str:
    return SHARD_PATTERN.format(index=index)


def tar_members(samples: Iterable[TarSample]) -> tuple[list[tuple[str, bytes]], int]:
    """(every tar member of the samples sorted by key, number of samples); encoded before
    anything is written, so the size of the file is known (`tar_size`)."""
    ordered = sorted(samples, key=lambda s: s.key)
    keys = [s.key for s in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate sample keys in one shard")
    return [member for sample in ordered for member in sample.to_members()], len(ordered)


def tar_size(members: list[tuple[str, bytes]]) -> int:
    """Bytes of the tar `write_tar` makes of `members`: a header block and the data padded
    to blocks per member, two zero blocks, all padded to a whole record."""
    blocks = sum(1 + -(-len(data) // tarfile.BLOCKSIZE) for _, data in members) + 2
    return -(-blocks * tarfile.BLOCKSIZE // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def write_tar(fileobj: BinaryIO, samples: Iterable[TarSample]) -> int:
    """Write samples (sorted by key) as one tar stream; returns the number written."""
    members, count = tar_members(samples)
    _write_members(fileobj, members)
    return count


def _write_members(fileobj: BinaryIO, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def _local_open(path: str) -> BinaryIO:
    return open(path, "wb")


def temp_path(final_path: str) -> str:
    """A unique sibling name that never matches the `pairs-*.tar` pattern readers use."""
    head, _, tail = final_path.rpartition("/")
    return f"{head}/.{tail}.{uuid.uuid4().hex}.tmp" if head else f".{tail}.{uuid.uuid4().hex}.tmp"


def write_shard(
    final_path: str,
    samples: Iterable[TarSample],
    *,
    opener: Opener = _local_open,
    rename: Renamer = os.replace,
    remove: Remover = remove_quietly,
) -> int:
    """Write a shard to a temporary name, then rename it into place; returns sample count.

    A failed write removes its temp file; a full disk raises `OutOfSpace` naming the shard
    and its size."""
    members, count = tar_members(samples)
    tmp = temp_path(final_path)
    try:
        with opener(tmp) as f:
            _write_members(f, members)
        rename(tmp, final_path)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            remove(tmp)
        if is_out_of_space(exc):
            raise out_of_space(exc, final_path, tar_size(members)) from exc  # type: ignore[arg-type]
        raise
    return count
