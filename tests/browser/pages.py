"""A web page on an origin of its own, for the CORS tests: a small threaded HTTP server
that serves one HTML page and the official JavaScript client's files from
tests/clients/js/node_modules (installed by ``npm ci --prefix tests/clients/js``)."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NODE_MODULES = Path(__file__).resolve().parents[1] / "clients" / "js" / "node_modules"
CLIENT = NODE_MODULES / "@upstash" / "redis" / "cloudflare.mjs"

# The client's web build (the one for Workers: fetch only) as a browser module; its one
# bare import, uncrypto, mapped to uncrypto's own browser build.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>kvgate CORS test</title>
<script type="importmap">{"imports": {"uncrypto": "/node_modules/uncrypto/dist/crypto.web.mjs"}}</script>
<script type="module">
import { Redis } from "/node_modules/@upstash/redis/cloudflare.mjs";
window.Redis = Redis;
window.clientReady = true;
</script></head><body><p>a page on another origin</p></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
    }

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class PageServer:
    def __init__(self) -> None:
        handler = partial(_Handler, directory=str(NODE_MODULES.parent))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
