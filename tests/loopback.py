"""A real HTTP server on loopback for tests that stream shards from a URL."""
import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and notes each requested path, to show which shards were streamed."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        self.server.requested.append(self.path)


@contextlib.contextmanager
def serve(root: str) -> Iterator[tuple[str, list[str]]]:
    """Serve `root` on 127.0.0.1 at a free port: (base URL, paths requested so far)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RecordingHandler, directory=root))
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requested
    finally:
        server.shutdown()
