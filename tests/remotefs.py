"""`testfs://`: a Beam FileSystem that behaves like an object store, for tests.

Beam's Python SDK has no in-memory filesystem, so this one keeps its objects as files under
the directory named by `$NOISETRACE_TESTFS_ROOT` (`testfs://bucket/a/b.mp4` is
`$ROOT/bucket/a/b.mp4`). It copies the semantics of `gs://` that local paths hide: there are
no directories (a prefix "exists" only if it is an object), listing is by prefix, and opening
a missing object raises an error that is not an `OSError` (GCS raises
`google.api_core.exceptions.NotFound`). A `testfs://` URL is not a local path, so any
`os.path` or `open()` call on it fails, which is the point.

An object stored as a FIFO is one whose read stalls, as on a hung network mount or an
object store that stops sending: it is listed and exists, and opening it blocks in the
kernel until someone opens the FIFO for writing.

Beam finds it by its scheme once this module is imported: the test imports it, and worker
processes import it through `--beam_plugins tests.remotefs` (the repository root must be on
their `PYTHONPATH`; the environment variables of the test reach them).
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes, FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "testfs"
PREFIX = f"{SCHEME}://"
ROOT_ENV = "NOISETRACE_TESTFS_ROOT"


class ObjectNotFound(Exception):
    """What opening a missing object raises: like GCS's `NotFound`, not an `OSError`."""


class ObjectStoreFileSystem(FileSystem):
    """`testfs://` objects stored as files under `$NOISETRACE_TESTFS_ROOT`."""

    def __init__(self, pipeline_options) -> None:
        super().__init__(pipeline_options)
        self._disk = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    # -- URL <-> file -------------------------------------------------------------------
    @staticmethod
    def _root() -> str:
        root = os.environ.get(ROOT_ENV)
        if not root:
            raise RuntimeError(f"{ROOT_ENV} is not set: testfs:// has no storage")
        return root

    def _file(self, url: str) -> str:
        if not url.startswith(PREFIX):
            raise ValueError(f"not a {PREFIX} URL: {url!r}")
        return os.path.join(self._root(), *url[len(PREFIX):].split("/"))

    def _url(self, file: str) -> str:
        return PREFIX + os.path.relpath(file, self._root()).replace(os.sep, "/")

    def _meta(self, file: str) -> FileMetadata:
        return FileMetadata(self._url(file), os.path.getsize(file), os.path.getmtime(file))

    # -- paths, as gs:// does them --------------------------------------------------------
    def join(self, basepath: str, *paths: str) -> str:
        path = basepath
        for p in paths:
            path = path.rstrip("/") + "/" + p.lstrip("/")
        return path

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path[len(PREFIX):].rpartition("/")
        return (PREFIX + head, tail) if head else (path, "")

    def has_dirs(self) -> bool:
        return False

    def mkdirs(self, path: str) -> None:
        """Object stores have no directories: nothing to make."""

    def _list(self, dir_or_prefix: str):
        for dirpath, _, files in os.walk(self._root()):
            for name in files:
                meta = self._meta(os.path.join(dirpath, name))
                if meta.path.startswith(dir_or_prefix):
                    yield meta

    # -- objects --------------------------------------------------------------------------
    def create(self, path: str, mime_type: str = "application/octet-stream",
               compression_type: str = CompressionTypes.AUTO) -> BinaryIO:
        return self._disk.create(self._file(path), mime_type, compression_type)

    def open(self, path: str, mime_type: str = "application/octet-stream",
             compression_type: str = CompressionTypes.AUTO) -> BinaryIO:
        if not self.exists(path):
            raise ObjectNotFound(path)
        return self._disk.open(self._file(path), mime_type, compression_type)

    def exists(self, path: str) -> bool:
        try:
            mode = os.stat(self._file(path)).st_mode
        except OSError:
            return False
        return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)

    def copy(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        self._transfer(self._disk.copy, source_file_names, destination_file_names)

    def rename(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        self._transfer(self._disk.rename, source_file_names, destination_file_names)

    def _transfer(self, op, sources: list[str], destinations: list[str]) -> None:
        files = [self._file(d) for d in destinations]
        for f in files:
            os.makedirs(os.path.dirname(f), exist_ok=True)
        op([self._file(s) for s in sources], files)

    def size(self, path: str) -> int:
        return os.path.getsize(self._file(path))

    def last_updated(self, path: str) -> float:
        return os.path.getmtime(self._file(path))

    def checksum(self, path: str) -> str:
        return self._disk.checksum(self._file(path))

    def metadata(self, path: str) -> FileMetadata:
        return self._meta(self._file(path))

    def delete(self, paths: list[str]) -> None:
        self._disk.delete([self._file(p) for p in paths])
