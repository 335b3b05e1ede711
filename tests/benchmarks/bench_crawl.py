"""Website source benchmark: crawl and index a real docs site served on 127.0.0.1.

The site is Debian's python3-doc (the Python 3.11 documentation as static HTML, real Sphinx
navigation; no sitemap, so pages are found by following links). One configured
`[[docs]] url` source runs through the same re-index the schedule runs, and prints:
- the first crawl + index: pages/s crawled alone, and pages/s crawled, extracted and indexed;
- an unchanged re-crawl (every page answers 304, nothing re-embedded): its time as a share of
  the first; then the same site with a sitemap: once (304s again), and unchanged with the
  sitemap's lastmod (no page requested at all);
- the machine's bare rates beside them, measured in this run: plain GETs of the same pages
  (no politeness, no parsing), and trafilatura's extraction alone.

`delay_ms` is 0 here (the site is local); a real site is crawled at one request per
`delay_ms` (default 500 ms), which then dominates: max_pages x delay_ms.

Run: .venv/bin/python -m tests.benchmarks.bench_crawl [--start library/] [--pages 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.app.application import App  # noqa: E402
from bot.app.config import load_settings  # noqa: E402
from knowledge.web_sources import site_pages  # noqa: E402

SITE = Path("/usr/share/doc/python3.11/html")


class _Quiet(SimpleHTTPRequestHandler):
    sitemap: bytes | None = None  # served at /sitemap.xml once set

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/sitemap.xml" and _Quiet.sitemap is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_Quiet.sitemap)))
            self.end_headers()
            self.wfile.write(_Quiet.sitemap)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="library/", help="folder of the site to crawl")
    parser.add_argument("--pages", type=int, default=300, help="max_pages")
    args = parser.parse_args()
    if not (SITE / "index.html").is_file():
        print(f"SKIP: python3-doc is not installed ({SITE}); apt-get install python3-doc")
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{args.start}"
    work = Path(tempfile.mkdtemp(prefix="supportbot-bench-crawl-"))
    try:
        app = App(load_settings(None, data_dir=work, docs=[{"url": url, "name": "pydocs", "delay_ms": 0,
                                                             "max_pages": args.pages}]))
        app.knowledge.embedder.model  # loaded before timing
        first_s, first = _run(app)
        pages = first.documents
        crawl_s = _crawl_seconds(first)
        print(f"site: {url} (python3-doc, link discovery, max_pages {args.pages}); cpu threads {os.cpu_count()}")
        print(f"{'first crawl + index':<34} {first_s:7.1f} s  {pages} pages, {first.chunks_embedded} chunks: "
              f"{pages / crawl_s:6.1f} pages/s crawled, {pages / first_s:6.1f} pages/s crawled and indexed")
        again_s, again = _run(app)
        print(f"{'unchanged re-crawl + re-index':<34} {again_s:7.1f} s  {again_s / first_s:6.1%} of the first; "
              f"{again.chunks_embedded} chunks re-embedded, {again.unchanged} pages unchanged "
              f"(crawl {_crawl_seconds(again):.1f} s)")
        urls = sorted(site_pages(work / "sources" / "pydocs").values())
        _Quiet.sitemap = ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + "".join(
            f"<url><loc>{u}</loc><lastmod>2024-01-01</lastmod></url>" for u in urls) + "</urlset>").encode()
        listed_s, listed = _run(app)  # the site now has a sitemap: its pages are asked for once more (304s)
        lastmod_s, lastmod = _run(app)
        print(f"{'sitemap appears, same pages':<34} {listed_s:7.1f} s  {listed_s / first_s:6.1%} of the first; "
              f"{listed.chunks_embedded} chunks re-embedded (crawl {_crawl_seconds(listed):.1f} s)")
        print(f"{'unchanged re-crawl, sitemap lastmod':<34} {lastmod_s:7.1f} s  {lastmod_s / first_s:6.1%} of the first; "
              f"{_requests(lastmod)} requests (robots.txt and sitemap lookups), {lastmod.chunks_embedded} re-embedded")
        _bare_rates(app, work / "sources" / "pydocs")
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)


def _run(app: App):
    t0 = time.perf_counter()
    report = app.index_ops.index()
    return time.perf_counter() - t0, report


def _crawl_seconds(report) -> float:
    """The crawl's own time, from its note ('... N requests in S s')."""
    for note in report.notes:
        if " requests in " in note:
            return float(note.rsplit(" requests in ", 1)[1].split("s", 1)[0])
    return float("nan")


def _requests(report) -> str:
    for note in report.notes:
        if " requests in " in note:
            return note.rsplit("; ", 1)[1].split(" requests", 1)[0]
    return "?"


def _bare_rates(app: App, folder: Path) -> None:
    import requests
    import trafilatura

    urls = sorted(site_pages(folder).values())
    session = requests.Session()
    t0 = time.perf_counter()
    bodies = [session.get(u, timeout=20).content for u in urls]
    get_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for body in bodies:
        trafilatura.extract(body, output_format="xml", include_tables=True, favor_recall=True)
    extract_s = time.perf_counter() - t0
    print(f"{'bare: plain GETs of the same pages':<34} {get_s:7.1f} s  {len(urls) / get_s:6.1f} pages/s")
    print(f"{'bare: trafilatura.extract alone':<34} {extract_s:7.1f} s  {len(urls) / extract_s:6.1f} pages/s")


if __name__ == "__main__":
    main()
