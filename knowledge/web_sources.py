"""Docs that live on a website: crawl it into a local mirror, then index the mirror.

Like a git source, a site is brought up to date before each re-index and then indexed as a
folder: `<folder>/pages/` holds each page's HTML under a name taken from its URL, and
`<folder>/crawl.json` what the next crawl needs (each page's URL, ETag, Last-Modified and
sitemap lastmod). A page is rewritten only when its bytes change, so an unchanged page is
never re-embedded; a page the site no longer has (404/410, dropped from the sitemap, no
longer linked) is deleted and leaves the index; a page that cannot be fetched now (timeout,
5xx, 429, after retries) keeps its last good version, and the report says so.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from knowledge.web_discovery import (
    Robots,
    Scope,
    SiteUnavailable,
    is_html,
    normalize,
    page_links,
    read_robots,
    read_sitemaps,
)
from knowledge.web_fetch import Fetched, WebClient
from knowledge.web_page import same_page_text

STATE_FILE = "crawl.json"
PAGES_DIR = "pages"
MAX_CRAWL_DELAY_S = 30.0  # a robots.txt Crawl-delay above this is capped (max_pages x delay must end)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SiteSettings:
    url: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_pages: int = 1000


@dataclass(frozen=True)
class PageState:
    source: str
    etag: str | None = None
    last_modified: str | None = None
    lastmod: str | None = None  # the sitemap's, when it gave one
    links: tuple[str, ...] = ()  # the page's links (following links): a 304 needs no re-read


@dataclass
class CrawlReport:
    url: str
    ok: bool = True  # False: the site could not be read at all; every page kept as it was
    discovery: str = ""  # "sitemap" or "links"
    pages: int = 0  # pages held for indexing after the crawl
    changed: list[str] = field(default_factory=list)  # new or changed pages (URLs)
    unchanged: int = 0
    removed: list[tuple[str, str]] = field(default_factory=list)  # (URL, why)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (URL, why its last good version stays)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (URL, why it is not indexed)
    requests: int = 0
    seconds: float = 0.0
    message: str = ""

    def notes(self, name: str, limit: int = 10) -> list[str]:
        """Lines for the index report: what the crawl did and every page worth a look."""
        if not self.ok:
            return [f"{name}: {self.message}"]
        lines = [f"{name}: crawled {self.url} ({'sitemap' if self.discovery == 'sitemap' else 'links'}): "
                 f"{self.pages} pages, {len(self.changed)} new or changed, {self.unchanged} unchanged, "
                 f"{len(self.removed)} removed, {len(self.skipped)} skipped; {self.requests} requests "
                 f"in {self.seconds:.1f}s"]
        for verb, items in (("kept the last good version of", self.kept), ("removed", self.removed),
                            ("skipped", self.skipped)):
            by_reason: dict[str, list[str]] = {}
            for url, why in items:
                by_reason.setdefault(why, []).append(url)
            for why, urls in by_reason.items():
                if len(urls) == 1:
                    lines.append(f"{name}: {verb} {urls[0]}: {why}")
                else:
                    shown = ", ".join(urls[:limit]) + (f" and {len(urls) - limit} more" if len(urls) > limit else "")
                    lines.append(f"{name}: {verb} {len(urls)} pages: {why} ({shown})")
        return lines


def site_pages(folder: Path) -> dict[str, str]:
    """source -> page URL for the pages a crawl left in `folder` (for citations)."""
    return {page.source: url for url, page in _load_state(folder).items()}


def pages_folder(folder: Path) -> Path:
    return folder / PAGES_DIR


def crawl_site(site: SiteSettings, folder: Path, client: WebClient, progress: Progress | None = None) -> CrawlReport:
    """Bring the mirror in `folder` up to date with the site."""
    started, requests_before = time.perf_counter(), client.requests
    report = CrawlReport(normalize(site.url))
    crawl = _Crawl(site, folder, client, report, progress)
    try:
        crawl.run()
    except SiteUnavailable as err:
        report.ok = False
        report.message = f"{err}; kept the last crawl's {len(crawl.previous)} pages"
    report.requests = client.requests - requests_before
    report.seconds = time.perf_counter() - started
    return report


class _Crawl:
    def __init__(self, site: SiteSettings, folder: Path, client: WebClient, report: CrawlReport,
                 progress: Progress | None) -> None:
        self.site = site
        self.scope = Scope(site.url, tuple(site.include), tuple(site.exclude))
        self.folder = Path(folder)
        self.pages = pages_folder(self.folder)
        self.client = client
        self.report = report
        self.progress = progress
        self.previous = _load_state(self.folder)
        self.held: dict[str, PageState] = {}
        self.sources: dict[str, str] = {}  # source -> URL holding it, so two URLs never share a file

    def run(self) -> None:
        robots = read_robots(self.client, self.site.url)
        if robots.crawl_delay:
            self.client.delay_s = max(self.client.delay_s, min(robots.crawl_delay, MAX_CRAWL_DELAY_S))
        listed = read_sitemaps(self.client, self.site.url, robots)
        entries = {u: m for u, m in (listed or {}).items() if self.scope.allows(u)}
        follow = not entries
        self.report.discovery = "links" if follow else "sitemap"
        queue = [normalize(self.site.url)] if follow else list(entries)
        visited: set[str] = set()
        if self.progress:
            self.progress("fetched", 0, min(self.site.max_pages, len(queue)))
        i = 0
        # pages kept count toward max_pages; pages passed over (noindex, not HTML, failed) do not,
        # so requests are capped too: a chain of noindex pages must not crawl for ever
        while i < len(queue) and len(self.held) < self.site.max_pages and len(visited) < 3 * self.site.max_pages:
            url = queue[i]
            i += 1
            if url in visited:
                continue
            visited.add(url)
            links = self._visit(url, robots, entries.get(url), follow)
            queue += [link for link in links if link not in visited and self.scope.allows(link)]
            if self.progress:
                self.progress("fetched", len(visited), max(len(visited), min(self.site.max_pages, len(set(queue)))))
        if self.progress:
            self.progress("fetched", len(visited), len(visited))
        over_cap = set(queue[i:]) - visited
        failures = bool(self.report.kept) or any("tries" in why for _, why in self.report.skipped)
        gone_already = {url for url, _ in self.report.removed}
        for url, before in self.previous.items():
            if url in self.held or url in gone_already:
                continue
            if follow and failures and url not in visited and self.scope.allows(url) and robots.allowed(url):
                self._hold(url, before)  # not reached because a page failed: keep it until a clean crawl
                self.report.kept.append((url, "not reached this time (another page failed)"))
                continue
            self.report.removed.append((url, self._why_gone(url, robots, entries, follow, over_cap)))
        self._write_state()
        self.report.pages = len(self.held)

    def _why_gone(self, url: str, robots: Robots, entries: dict, follow: bool, over_cap: set[str]) -> str:
        if not self.scope.allows(url):
            return "outside the source's url/include/exclude now"
        if not robots.allowed(url):
            return "disallowed by robots.txt now"
        if url in over_cap:
            return f"beyond max_pages ({self.site.max_pages})"
        return "no longer linked from the site" if follow else "no longer in the sitemap"

    def _visit(self, url: str, robots: Robots, lastmod: str | None, follow: bool) -> list[str]:
        """Fetch one page (or trust its sitemap lastmod); returns its links when following."""
        if not robots.allowed(url):
            self.report.skipped.append((url, "disallowed by robots.txt"))
            return []
        before = self.previous.get(url)
        stored = self.pages / before.source if before else None
        has_file = stored is not None and stored.is_file()
        if before and has_file and not follow and lastmod and lastmod == before.lastmod:
            self._hold(url, before)
            self.report.unchanged += 1
            return []
        fetched = self.client.get(url, before.etag if has_file and before else None,
                                  before.last_modified if has_file and before else None, html_only=True,
                                  may_follow=lambda target: self._may_follow(target, robots))
        if fetched.status == 304 and before and has_file:
            self._hold(url, PageState(before.source, fetched.headers.get("etag", before.etag),
                                      fetched.headers.get("last-modified", before.last_modified), lastmod,
                                      before.links))
            self.report.unchanged += 1
            return list(before.links)
        problem = self._problem(url, fetched, robots)
        if problem is not None:
            gone, why = problem
            if gone or not (before and has_file):
                (self.report.removed if before else self.report.skipped).append((url, why))
                return []
            self._hold(url, before)
            self.report.kept.append((url, why))
            return list(before.links)
        text = _decoded(fetched)
        links, may_index, may_follow = page_links(text, fetched.url)
        if not may_index:
            (self.report.removed if before else self.report.skipped).append(
                (url, "the page asks not to be indexed (robots meta noindex)"))
            return links if follow and may_follow else []
        source = before.source if before else self.scope.source_for(url)
        if self.sources.get(source, url) != url:
            return []  # the same page under a second URL (`guide/` and `guide/index.html`)
        data = text.encode("utf-8")
        target = self.pages / source
        old = target.read_bytes() if has_file else None
        if old == data:
            self.report.unchanged += 1
        elif old is not None and same_page_text(old, data, source):
            # a new build of the page (its markup changed, its text did not): the file keeps its time, so
            # neither the next re-index nor `status` reads it again to find nothing new
            kept = target.stat()
            _write_atomic(target, data)
            os.utime(target, ns=(kept.st_atime_ns, kept.st_mtime_ns))
            self.report.unchanged += 1
        else:
            _write_atomic(target, data)
            self.report.changed.append(url)
        followed = tuple(links) if follow and may_follow else ()
        self._hold(url, PageState(source, fetched.headers.get("etag"), fetched.headers.get("last-modified"), lastmod,
                                  followed))
        return list(followed)

    def _may_follow(self, target: str, robots: Robots) -> bool:
        """A redirect is followed only into the source's scope and where robots.txt allows."""
        try:
            final = normalize(target)
        except ValueError:
            return False
        return self.scope.allows(final) and robots.allowed(final)

    def _problem(self, url: str, fetched: Fetched, robots: Robots) -> tuple[bool, str] | None:
        """(gone for good, why) when the answer is not a page to index, else None."""
        if fetched.transient:
            return False, fetched.transient
        if fetched.status in (404, 410):
            return True, f"HTTP {fetched.status} (not found)"
        if fetched.refused:
            return True, fetched.refused
        if fetched.status != 200:
            return False, f"HTTP {fetched.status}"
        final = normalize(fetched.url)
        if final != url and not self.scope.allows(final):
            return True, f"redirects outside the source to {final}"
        if final != url and not robots.allowed(final):
            return True, f"redirects to {final}, disallowed by robots.txt"
        if not is_html(fetched):
            return True, f"not an HTML page ({fetched.media_type or 'no content type'})"
        return None

    def _hold(self, url: str, page: PageState) -> None:
        self.held[url] = page
        self.sources[page.source] = url

    def _write_state(self) -> None:
        for url, before in self.previous.items():
            if url not in self.held and self.sources.get(before.source) is None:
                _remove_page(self.pages, before.source)
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"version": 1, "url": self.report.url, "pages": {u: asdict(p) for u, p in sorted(self.held.items())}}
        _write_atomic(self.folder / STATE_FILE, json.dumps(payload, indent=1).encode("utf-8"))


def _decoded(fetched: Fetched) -> str:
    """The page as text: the charset the server named, else what the page itself declares."""
    if fetched.charset:
        try:
            return fetched.body.decode(fetched.charset, errors="replace")
        except LookupError:
            pass
    from bs4 import UnicodeDammit

    return UnicodeDammit(fetched.body, is_html=True).unicode_markup or fetched.body.decode("utf-8", "replace")


def _load_state(folder: Path) -> dict[str, PageState]:
    try:
        payload = json.loads((Path(folder) / STATE_FILE).read_text("utf-8"))
        return {url: PageState(**{**page, "links": tuple(page.get("links", ()))})
                for url, page in payload.get("pages", {}).items()}
    except (OSError, ValueError, TypeError):
        return {}  # no crawl yet, or a damaged state file: the next crawl fetches every page again


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.part")  # hidden: the docs walker never reads it
    scratch.write_bytes(data)
    os.replace(scratch, path)


def _remove_page(pages: Path, source: str) -> None:
    path = pages / source
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != pages and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
