"""A real static docs site on 127.0.0.1 for crawl tests: pages copied from Debian's
python3-doc (real Sphinx navigation, sidebars and footers), served by the standard library's
`SimpleHTTPRequestHandler` (Last-Modified, If-Modified-Since -> 304, 404 for a deleted file),
with scripted faults at the network edge: a page that hangs, answers 5xx/429, or is counted.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
# Small real pages of one folder (tutorial/), and one page outside it.
PAGES = ["tutorial/index.html", "tutorial/venv.html", "tutorial/whatnow.html", "tutorial/interactive.html",
         "library/json.html"]


@dataclass
class Hit:
    path: str
    status: int
    conditional: bool  # the request carried If-Modified-Since or If-None-Match
    user_agent: str


@dataclass
class DocsSite:
    root: Path
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    faults: dict[str, list] = field(default_factory=dict)  # path -> queue of "hang" | (status, headers)
    release: threading.Event = field(default_factory=threading.Event)

    def requested(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


class _Handler(SimpleHTTPRequestHandler):
    site: DocsSite

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        queue = self.site.faults.get(path)
        fault = queue.pop(0) if queue else None
        conditional = bool(self.headers.get("If-Modified-Since") or self.headers.get("If-None-Match"))
        if fault == "hang":
            self.site.hits.append(Hit(path, 0, conditional, self.headers.get("User-Agent", "")))
            self.site.release.wait(10)  # the crawler's timeout fires long before; released at teardown
            return
        if fault is not None:
            status, headers = fault
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def send_response(self, code: int, message: str | None = None) -> None:
        conditional = bool(self.headers.get("If-Modified-Since") or self.headers.get("If-None-Match"))
        self.site.hits.append(Hit(self.path.split("?", 1)[0], code, conditional, self.headers.get("User-Agent", "")))
        super().send_response(code, message)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        pass


@contextmanager
def serve(root: Path) -> Iterator[DocsSite]:
    site = DocsSite(root)
    handler = type("Handler", (_Handler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()


def copy_pages(target: Path, pages: list[str] = PAGES) -> Path:
    for page in pages:
        (target / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PYTHON_DOCS / page, target / page)
    return target


def sitemap(urls: list[tuple[str, str | None]]) -> str:
    entries = "".join(f"<url><loc>{loc}</loc>" + (f"<lastmod>{mod}</lastmod>" if mod else "") + "</url>"
                      for loc, mod in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
