"""Undecoded samples: move pairs between tar files without decoding or re-encoding them.

The shard builder first writes each video's pairs to a small tar of their own (a spill
file) and later copies them, byte for byte, into the shards they are dealt to. Copying the
members as they are keeps the second step cheap and guarantees a shard holds exactly the
bytes the extraction step encoded.
"""
from __future__ import annotations

import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

Members = list[tuple[str, bytes]]  # (tar member name, bytes) of one sample, in tar order


@dataclass(frozen=True)
class RawSample:
    """A sample as its tar members; written by `shards.writer.write_tar` like a PairSample."""

    key: str
    members: Members
    label: str

    def to_members(self) -> Members:
        return self.members


def read_members(fileobj: BinaryIO, keys: Iterable[str]) -> dict[str, Members]:
    """{key: members} of the wanted samples of one tar file.

    The file must be seekable: tarfile then skips the data of unwanted members instead of
    reading it, so pulling a few samples out of a large file reads little more than its
    headers. A wanted key that is absent is an error: the caller planned from a list of keys
    the file was written with, so a missing one means the file changed underneath it.
    """
    wanted = set(keys)
    found = _collect(fileobj, "r:", wanted)
    missing = sorted(wanted - found.keys())
    if missing:
        raise ValueError(f"{getattr(fileobj, 'name', 'tar file')}: lacks samples {missing[:3]}"
                         f"{' and more' if len(missing) > 3 else ''}")
    return found


def stream_members(fileobj: BinaryIO) -> dict[str, Members]:
    """{key: members} of every sample of a tar stream, read front to back (no seeking), so
    it also reads a shard streamed from a URL."""
    return _collect(fileobj, "r|", None)


def _collect(fileobj: BinaryIO, mode: str, wanted: set[str] | None) -> dict[str, Members]:
    """{key: members} of the regular files whose key is wanted (all when `wanted` is None)."""
    found: dict[str, Members] = {}
    with tarfile.open(fileobj=fileobj, mode=mode) as tar:
        for info in tar:
            key = info.name.split(".", 1)[0]
            if (wanted is None or key in wanted) and info.isfile():
                data = tar.extractfile(info)
                assert data is not None  # a regular file always has a data stream
                found.setdefault(key, []).append((info.name, data.read()))
    return found
