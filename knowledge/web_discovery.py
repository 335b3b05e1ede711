"""Which pages of a docs site to crawl: its scope, robots.txt, sitemaps and links.

A site source stays on its start URL's host and under its path (`https://docs.example.com/
guide/` never reaches `/blog/` or another host) unless `include` patterns say otherwise;
`exclude` patterns always win. robots.txt is read with the standard library's parser, and
sitemaps (robots.txt `Sitemap:` lines, else /sitemap.xml, sitemap indexes, gzip) with its
XML parser: both formats are simple and fully specified, so no extra dependency is needed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from protego import Protego

from knowledge.web_fetch import HTML_TYPES, Fetched, WebClient

MAX_SITEMAPS = 50  # sitemap files read per crawl (an index may list many)
# Links to these are files, not pages: never requested while following links.
_NOT_PAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".pdf", ".zip", ".gz", ".tgz", ".bz2",
              ".xz", ".tar", ".epub", ".css", ".js", ".json", ".xml", ".txt", ".mp4", ".webm", ".mp3", ".woff",
              ".woff2", ".ttf", ".exe", ".dmg", ".msi", ".deb", ".rpm", ".whl")


def normalize(url: str) -> str:
    """A page's canonical URL: no fragment, lower-case scheme and host, no default port,
    dot segments resolved."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    path = posixpath.normpath(parts.path) if parts.path else "/"
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    path = "/" if path in (".", "//") else path
    return urlunsplit((scheme, netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Scope:
    """What a site source may fetch."""

    start: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """The start URL up to its last '/': the folder the crawl stays in."""
        start = normalize(self.start)
        return start if start.endswith("/") else start.rsplit("/", 1)[0] + "/"

    def allows(self, url: str) -> bool:
        url = normalize(url)
        if urlsplit(url).scheme not in ("http", "https"):
            return False
        if any(fnmatch.fnmatchcase(url, pattern) for pattern in self.exclude):
            return False
        if self.include:
            return any(fnmatch.fnmatchcase(url, pattern) for pattern in self.include)
        return url.startswith(self.prefix) or url == self.prefix.rstrip("/")

    def source_for(self, url: str) -> str:
        """The page's file name under the site's folder: its path below the start URL's
        folder (else host and path), `index.html` for a folder URL, `.html` added to an
        extensionless one, a hash of the query string kept apart."""
        url = normalize(url)
        parts = urlsplit(url)
        if url.startswith(self.prefix):
            rel = url[len(self.prefix):].split("?", 1)[0]
        else:
            rel = parts.netloc + parts.path
        rel = rel.lstrip("/")
        if not rel or rel.endswith("/"):
            rel += "index.html"
        elif "." not in rel.rsplit("/", 1)[-1]:
            rel += ".html"
        if parts.query:
            stem, dot, ext = rel.rpartition(".")
            rel = f"{stem}__q{hashlib.sha1(parts.query.encode()).hexdigest()[:10]}{dot}{ext}"
        segments = [_safe_segment(s) for s in rel.split("/") if s not in ("", ".", "..")]
        return "/".join(segments)


def _safe_segment(segment: str) -> str:
    """A path segment the docs walker will not skip (hidden, `__x`) and a filesystem takes."""
    if segment.startswith((".", "__")):
        segment = "_" + segment.lstrip("._")
    if len(segment.encode()) > 200:  # cut by bytes (a character may take four), keeping the extension
        stem, dot, ext = segment.rpartition(".") if "." in segment[-8:] else (segment, "", "")
        head = stem.encode()[:80].decode("utf-8", errors="ignore")
        segment = f"{head}-{hashlib.sha1(segment.encode()).hexdigest()[:16]}{dot}{ext}"
    return segment


class Robots:
    """robots.txt rules for our User-Agent (RFC 9309: a missing file allows everything). Read
    with protego, which matches as RFC 9309 says (the longest rule wins, `*` and `$`
    wildcards); the standard library's parser takes the first rule that matches and knows no
    wildcards, so `Allow: /` above a `Disallow` would allow everything."""

    def __init__(self, parser: Protego | None, user_agent: str) -> None:
        self.parser = parser
        self.user_agent = user_agent

    def allowed(self, url: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, self.user_agent)

    @property
    def crawl_delay(self) -> float | None:
        delay = self.parser.crawl_delay(self.user_agent) if self.parser else None
        return float(delay) if delay is not None else None

    @property
    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser else []


class SiteUnavailable(Exception):
    """The site itself cannot be read now (robots.txt unreachable): keep what we have."""


def read_robots(client: WebClient, start: str) -> Robots:
    parts = urlsplit(normalize(start))
    fetched = client.get(urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", "")))
    if fetched.transient:
        # RFC 9309: an unreachable robots.txt means "assume everything is disallowed".
        raise SiteUnavailable(f"robots.txt could not be read ({fetched.transient})")
    if fetched.status != 200:
        return Robots(None, client.settings.user_agent)  # 4xx: no rules
    return Robots(Protego.parse(fetched.body.decode("utf-8", errors="replace")), client.settings.user_agent)


def read_sitemaps(client: WebClient, start: str, robots: Robots) -> dict[str, str | None] | None:
    """Every page URL the site's sitemaps list, with its `lastmod` (None: not given), or
    None when the site has no sitemap."""
    parts = urlsplit(normalize(start))
    root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    candidates = robots.sitemaps or [urljoin(Scope(start).prefix, "sitemap.xml"), urljoin(root, "sitemap.xml")]
    pending = list(dict.fromkeys(candidates))
    pages: dict[str, str | None] = {}
    found = False
    read = 0
    while pending and read < MAX_SITEMAPS:
        url = pending.pop(0)
        read += 1
        fetched = client.get(url)
        if fetched.status != 200 or not fetched.body:
            continue
        try:
            tree = ElementTree.fromstring(_maybe_gunzip(fetched.body))
        except (ElementTree.ParseError, OSError, EOFError, ValueError, zlib.error):  # broken, or a gzip bomb
            continue
        kind = tree.tag.rsplit("}", 1)[-1]
        if kind == "sitemapindex":
            found = True
            pending += [loc for loc, _ in _entries(tree, "sitemap")  # the site's own sitemaps only
                        if loc not in pending and urlsplit(loc).netloc.lower() == parts.netloc.lower()]
        elif kind == "urlset":
            found = True
            for loc, lastmod in _entries(tree, "url"):
                try:
                    pages.setdefault(normalize(loc), lastmod)
                except ValueError:  # a malformed <loc> (bad port, broken IPv6 host): that entry only
                    continue
    return pages if found else None


def _entries(tree: ElementTree.Element, kind: str) -> list[tuple[str, str | None]]:
    entries = []
    for entry in tree:
        if entry.tag.rsplit("}", 1)[-1] != kind:
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in entry}
        if fields.get("loc"):
            entries.append((fields["loc"], fields.get("lastmod") or None))
    return entries


_MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemap protocol's own limit for one file, uncompressed


def _maybe_gunzip(body: bytes) -> bytes:
    """A gzipped sitemap unpacked up to the protocol's 50 MB: a small file that would unpack to
    gigabytes is refused, not unpacked into memory."""
    if body[:2] != b"\x1f\x8b":
        return body
    unpacker = zlib.decompressobj(wbits=31)
    unpacked = unpacker.decompress(body, _MAX_SITEMAP_BYTES)
    if unpacker.unconsumed_tail:
        raise ValueError(f"a gzipped sitemap unpacks to more than {_MAX_SITEMAP_BYTES // 2**20} MB")
    return unpacked


def is_html(fetched: Fetched) -> bool:
    return fetched.media_type in HTML_TYPES or (not fetched.media_type and fetched.body.lstrip()[:1] == b"<")


def page_links(html: str, base_url: str) -> tuple[list[str], bool, bool]:
    """(links on the page, may index, may follow) as the page's own robots meta tag says.
    lxml's HTML parser: a crawl reads every page it fetches for links."""
    import lxml.html
    from lxml import etree

    try:
        doc = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (etree.ParserError, ValueError):
        return [], True, True
    robots_meta = " ".join(str(m.get("content", "")).lower()
                           for m in doc.iter("meta") if str(m.get("name", "")).lower() == "robots")
    base = next((str(b.get("href")) for b in doc.iter("base") if b.get("href")), None)
    base_url = urljoin(base_url, base) if base else base_url
    links = []
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or "nofollow" in str(anchor.get("rel") or "").lower():
            continue
        if href.startswith(("#", "mailto:", "javascript:", "tel:")):
            continue
        try:
            link = normalize(urljoin(base_url, href))
        except ValueError:  # a malformed link (bad port, broken IPv6 host) is passed over, not the page
            continue
        if not urlsplit(link).path.lower().endswith(_NOT_PAGES):
            links.append(link)
    return list(dict.fromkeys(links)), "noindex" not in robots_meta, "nofollow" not in robots_meta
