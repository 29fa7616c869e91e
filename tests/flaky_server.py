"""A real local HTTP server that fails a given number of times per path, then
succeeds: what retries (options.retry, retryOnFail) are tested against."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Flaky:
    """A local HTTP server that answers 500 to the first `failures` requests of
    each path, then 200; it counts every request per path."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = self.path
                flaky.calls[path] = flaky.calls.get(path, 0) + 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                ok = flaky.calls[path] > flaky.failures.get(path, 0)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"paid": true}' if ok else b'{"error": "down"}')

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def path(self, name: str, failures: int) -> str:
        self.failures[f"/{name}"] = failures
        return f"{self.base}/{name}"
