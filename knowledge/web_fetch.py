"""Polite HTTP for crawling a docs site: one session, a clear User-Agent, a pause between
requests, conditional GETs, bounded bodies, and retries of transient failures.

Retries are urllib3's `Retry` (the helper requests itself is built on) mounted on a requests
session: timeouts, connection errors, 5xx and 429 are retried with exponential backoff, and a
`Retry-After` header is obeyed up to a cap, so one slow server cannot stall a nightly run for
hours. What still fails after the retries comes back as a `Fetched` with `transient` set:
the caller keeps the page's last good version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError
from urllib3.util.retry import Retry

USER_AGENT = "supportbot-docs-crawler/1.0 (indexes a team's docs for its support bot; obeys robots.txt)"
_RETRIED_STATUSES = (429, 500, 502, 503, 504)
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str = USER_AGENT
    timeout_s: float = 20.0
    retries: int = 3
    backoff_s: float = 1.0  # waits 0, 2x, 4x this between tries (a Retry-After header wins)
    max_retry_after_s: float = 120.0
    delay_s: float = 0.5  # between two requests to the site (robots.txt Crawl-delay may ask for more)
    max_bytes: int = 20_000_000


@dataclass(frozen=True)
class Fetched:
    url: str  # where the body came from, after redirects
    status: int  # 0: no HTTP answer at all
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    transient: str | None = None  # why the page could not be fetched this time (retried, still failing)
    refused: str | None = None  # why the answer is not taken (too large)

    @property
    def charset(self) -> str | None:
        message = Message()
        message["content-type"] = self.headers.get("content-type", "")
        return message.get_param("charset")  # type: ignore[return-value]

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class WebClient:
    """One site's HTTP client. `sleep` and `clock` are injectable so tests never wait."""

    def __init__(self, settings: FetchSettings | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or FetchSettings()
        self.sleep = sleep
        self.clock = clock
        self.delay_s = self.settings.delay_s
        self.requests = 0
        self._next_at = 0.0
        retry = Retry(
            total=self.settings.retries, connect=self.settings.retries, read=self.settings.retries,
            status=self.settings.retries, other=0, redirect=10, allowed_methods={"GET"},
            status_forcelist=_RETRIED_STATUSES, backoff_factor=self.settings.backoff_s,
            respect_retry_after_header=True, retry_after_max=self.settings.max_retry_after_s,
            raise_on_status=False, raise_on_redirect=False,
        )
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": self.settings.user_agent,
                                     "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5"})
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None,
            html_only: bool = False, may_follow: Callable[[str], bool] | None = None) -> Fetched:
        """GET `url`, conditionally when validators from the last fetch are given. With
        `html_only`, the body of an answer that says it is not HTML is never downloaded.
        Redirects are followed one hop at a time, each paced, and only where `may_follow`
        (default: the same host) allows: a redirect off the source is refused before any
        request reaches its target."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        may_follow = may_follow or (lambda target: _origin(target) == _origin(url))
        current = url
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                self._pace()
                with self.session.get(current, headers=headers, timeout=self.settings.timeout_s, stream=True,
                                      allow_redirects=False) as response:
                    if response.is_redirect and response.headers.get("location"):
                        target = urljoin(current, response.headers["location"])
                        if not may_follow(target):
                            return Fetched(target, response.status_code,
                                           refused=f"redirects outside the source to {target}")
                        current = target
                        continue
                    body = b""
                    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                    if response.status_code == 200 and not (html_only and media and media not in HTML_TYPES):
                        body = self._read(response)
                    return Fetched(current, response.status_code, body,
                                   {k.lower(): v for k, v in response.headers.items()},
                                   _transient_status(response.status_code, self.settings.retries))
            return Fetched(current, 0, refused=f"more than {_MAX_REDIRECTS} redirects")
        except _TooLarge:
            return Fetched(url, 200, refused=f"larger than {self.settings.max_bytes / 1e6:.1f} MB")
        except requests.exceptions.RequestException as err:
            if _timed_out(err):
                return Fetched(url, 0, transient=f"timed out after {self.settings.retries + 1} tries "
                                                f"({self.settings.timeout_s:g}s each)")
            return Fetched(url, 0, transient=f"unreachable after {self.settings.retries + 1} tries "
                                            f"({_reason(err)})")

    def _read(self, response: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.settings.max_bytes:
                raise _TooLarge()
            chunks.append(chunk)
        return b"".join(chunks)

    def _pace(self) -> None:
        now = self.clock()
        if now < self._next_at:
            self.sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self.delay_s
        self.requests += 1


class _TooLarge(Exception):
    pass


_MAX_REDIRECTS = 10


def _origin(url: str) -> tuple[str, str]:
    """Scheme and host:port, lower-cased: where a request goes."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _transient_status(status: int, retries: int) -> str | None:
    if status in _RETRIED_STATUSES:
        return f"HTTP {status} after {retries + 1} tries"
    return None


def _timed_out(err: BaseException) -> bool:
    """requests reports a read timeout that outlived its retries as a ConnectionError
    wrapping urllib3's MaxRetryError; look through the wrapping."""
    seen: BaseException | None = err
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (requests.exceptions.Timeout, TimeoutError, ReadTimeoutError, ConnectTimeoutError)):
            return True
        seen = getattr(seen, "reason", None) or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException)
                                                 else None)
    return False


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Caused by ", "] "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("()'\" ")[:120] or type(err).__name__
