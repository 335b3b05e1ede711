"""Website sources on the real stack: a real static docs site (Debian's python3-doc pages)
served on 127.0.0.1, crawled through the configured `[[docs]] url` source by the same
re-index the CLI and the schedule run, indexed with the bundled embedder into LanceDB."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot.app.application import App
from bot.app.config import ConfigError, load_settings
from knowledge.embedding import Embedder
from knowledge.web_discovery import Scope
from knowledge.web_fetch import USER_AGENT
from knowledge.web_sources import pages_folder
from tests.docs_site import PYTHON_DOCS, copy_pages, serve, sitemap

pytestmark = pytest.mark.skipif(not (PYTHON_DOCS / "tutorial" / "venv.html").is_file(),
                                reason="python3-doc is not installed (scripts/install-system-packages.sh)")

VENV, WHATNOW, INTERACTIVE = "/tutorial/venv.html", "/tutorial/whatnow.html", "/tutorial/interactive.html"


def make_app(data_dir: Path, embedder: Embedder, url: str, **source) -> App:
    docs = [{"url": url, "name": "pydocs", "delay_ms": 0, "timeout_s": 0.3, "retries": 1, **source}]
    return App(load_settings(None, data_dir=data_dir, docs=docs), embedder=embedder)


def top(app: App, query: str):
    app.knowledge.store.live(refresh=True)
    return app.knowledge.retriever.search(query, k=1)[0]


def all_text(app: App, source: str) -> str:
    app.knowledge.store.live(refresh=True)
    passages = app.knowledge.retriever.search("virtual environment venv pip packages", k=50)
    return " ".join(p.text for p in passages if p.source == source)


def touch_later(path: Path) -> None:
    """Last-Modified has one-second resolution: an edit made in the same second as the copy
    would look unchanged to If-Modified-Since."""
    later = time.time() + 5
    os.utime(path, (later, later))


def test_sitemap_crawl_indexes_main_content_with_anchors_then_recrawls_incrementally(tmp_path, embedder) -> None:
    root = copy_pages(tmp_path / "site")
    with serve(root) as site:
        base = site.url + "/tutorial/"
        (root / "robots.txt").write_text(f"User-agent: *\nAllow: /\nSitemap: {site.url}/maps/docs.xml\n")
        (root / "maps").mkdir()
        (root / "maps" / "docs.xml").write_text(sitemap([
            (site.url + VENV, None), (site.url + WHATNOW, "2024-01-01"), (site.url + INTERACTIVE, None),
            (site.url + "/library/json.html", None),  # listed, but outside the source's folder
        ]))
        app = make_app(tmp_path / "data", embedder, base)

        first = app.index_ops.index()
        assert sorted(first.added) == ["interactive.html", "venv.html", "whatnow.html"]
        assert site.requested("/library/json.html") == []
        assert {h.user_agent for h in site.hits} == {USER_AGENT}
        passage = top(app, "how do I create a virtual environment with the venv module?")
        assert passage.source == "venv.html"
        assert passage.url == base + "venv.html#creating-virtual-environments"
        assert passage.heading.endswith("12.2. Creating Virtual Environments")
        text = all_text(app, "venv.html")
        assert "python -m venv tutorial-env" in text.replace("python3", "python")
        for chrome in ("Previous topic", "Next topic", "This Page", "Report a Bug", "Navigation", "¶"):
            assert chrome not in text  # Sphinx's sidebar, related bar, footer and permalinks

        site.hits.clear()
        second = app.index_ops.index()
        assert (second.chunks_embedded, second.added, second.updated, second.deleted) == (0, [], [], [])
        assert [(h.status, h.conditional) for h in site.requested(VENV)] == [(304, True)]
        assert site.requested(WHATNOW) == []  # its sitemap lastmod is the one of the last crawl
        assert app.status_report.status()["changed_since_build"] == "0 added, 0 modified, 0 deleted"

        venv = root / VENV[1:]  # a new build of the page: its markup changes, its text does not
        venv.write_text(venv.read_text().replace("</head>", "<!-- build 2 --></head>"))
        later = time.time() + 2
        os.utime(venv, (later, later))
        crawled = pages_folder(app.settings.sources_dir / "pydocs") / "venv.html"
        crawled_at = crawled.stat().st_mtime_ns
        rebuilt = app.index_ops.index()
        assert (rebuilt.updated, rebuilt.chunks_embedded) == ([], 0)
        # the new build is stored and keeps the time of the text it holds: no later re-index or `status` reads it
        assert "<!-- build 2 -->" in crawled.read_text() and crawled.stat().st_mtime_ns == crawled_at
        # `status` compares the page's text as the index does (it counted every refetched page "modified")
        assert app.status_report.status()["changed_since_build"] == "0 added, 0 modified, 0 deleted"

        (root / VENV[1:]).write_text((root / VENV[1:]).read_text().replace(
            "The module used to create and manage virtual environments is called",
            "Virtual environments are made by the pumpernickel tool, a module called"))
        touch_later(root / VENV[1:])
        (root / INTERACTIVE[1:]).unlink()
        third = app.index_ops.index()
        assert (third.updated, third.deleted) == (["venv.html"], ["interactive.html"])
        assert "pumpernickel" in top(app, "pumpernickel tool").text
        assert any("removed " + site.url + INTERACTIVE + ": HTTP 404" in note for note in third.notes)

        site.hits.clear()
        site.faults[VENV] = ["hang", "hang"]  # the first try and its retry both time out
        site.faults[WHATNOW] = [(429, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
        (root / "maps" / "docs.xml").write_text(sitemap([(site.url + VENV, None), (site.url + WHATNOW, "2024-02-02")]))
        fourth = app.index_ops.index()
        assert (fourth.deleted, fourth.chunks_embedded) == ([], 0)
        notes = "\n".join(fourth.notes)
        assert f"kept the last good version of {site.url + VENV}: timed out after 2 tries" in notes
        assert f"kept the last good version of {site.url + WHATNOW}: HTTP 503 after 2 tries" in notes
        assert "pumpernickel" in top(app, "pumpernickel tool").text
        assert len(site.requested(VENV)) == 2


def test_link_crawl_stays_under_the_start_folder_and_obeys_robots(tmp_path, embedder) -> None:
    root = copy_pages(tmp_path / "site")
    (tmp_path / "elsewhere").mkdir()
    with serve(tmp_path / "elsewhere") as other, serve(root) as site:
        page = root / VENV[1:]
        page.write_text(page.read_text().replace(
            "<h1>", f'<p><a href="{other.url}/tutorial/offsite.html">elsewhere</a> '
                    f'<a href="{site.url}/library/json.html">json</a></p><h1>', 1))
        (root / "robots.txt").write_text("User-agent: supportbot-docs-crawler\nDisallow: /tutorial/whatnow.html\n")
        app = make_app(tmp_path / "data", embedder, site.url + "/tutorial/index.html")
        report = app.index_ops.index()

        assert sorted(report.added) == ["index.html", "interactive.html", "venv.html"]
        assert other.hits == []
        assert site.requested("/library/json.html") == [] and site.requested(WHATNOW) == []
        assert any(f"skipped {site.url}{WHATNOW}: disallowed by robots.txt" in note for note in report.notes)
        assert any("crawled " in note and "(links): 3 pages" in note for note in report.notes)

        site.hits.clear()  # unchanged: every page answers 304, its links come from the last crawl
        site.faults[VENV] = [(429, {"Retry-After": "0"})]  # once: the retry gets through
        again = app.index_ops.index()
        assert (again.deleted, again.chunks_embedded, again.unchanged) == ([], 0, 3)
        assert [h.status for h in site.requested(VENV)] == [429, 304] and site.requested(WHATNOW) == []
        assert not any("kept the last good version" in note for note in again.notes)


def test_a_site_that_cannot_be_reached_keeps_its_pages_and_says_so(tmp_path, embedder) -> None:
    root = copy_pages(tmp_path / "site", ["tutorial/venv.html"])
    with serve(root) as site:
        app = make_app(tmp_path / "data", embedder, site.url + "/tutorial/venv.html")
        assert app.index_ops.index().added == ["venv.html"]
        site.faults["/robots.txt"] = [(500, {}), (500, {})]
        report = app.index_ops.index()
    assert report.deleted == [] and report.documents == 1
    assert report.notes == ["pydocs: robots.txt could not be read (HTTP 500 after 2 tries); "
                            "kept the last crawl's 1 pages"]


@pytest.mark.parametrize("entry, problem", [
    ({"url": "ftp://docs.example.com/"}, "must start with http:// or https://"),
    ({"url": "https://docs.example.com/", "path": "docs"}, "takes no `path` or `git`"),
    ({"url": "https://docs.example.com/", "max_pages": 0}, "docs.0.max_pages"),
    ({"url": "https://docs.example.com/", "crawl_delay": 1}, "docs.0.crawl_delay: unknown setting"),
])
def test_website_source_config_errors_are_one_line(tmp_path, entry, problem) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_settings(None, data_dir=tmp_path, docs=[entry])


def test_scope_names_pages_inside_their_folder_and_refuses_the_rest() -> None:
    scope = Scope("https://docs.example.com/guide/start.html", exclude=("*/guide/private/*",))
    assert scope.allows("https://docs.example.com/guide/a/b.html#frag")
    assert not scope.allows("https://docs.example.com/blog/post.html")
    assert not scope.allows("https://evil.example.net/guide/a.html")
    assert not scope.allows("https://docs.example.com/guide/private/keys.html")
    assert not scope.allows("https://docs.example.com/guide/../admin/")
    assert scope.source_for("https://docs.example.com/guide/") == "index.html"
    assert scope.source_for("https://docs.example.com/guide/setup") == "setup.html"
    assert scope.source_for("https://docs.example.com/guide/.hidden/__init__") == "_hidden/_init__.html"
    wider = Scope("https://docs.example.com/guide/", include=("https://docs.example.com/*",))
    assert wider.allows("https://docs.example.com/blog/post.html")
    assert wider.source_for("https://docs.example.com/blog/post.html") == "docs.example.com/blog/post.html"


def test_sitemap_indexes_and_gzipped_sitemaps_are_read(tmp_path) -> None:
    import gzip

    from knowledge.web_discovery import read_robots, read_sitemaps
    from knowledge.web_fetch import FetchSettings, WebClient

    root = tmp_path / "site"
    root.mkdir()
    with serve(root) as site:
        (root / "robots.txt").write_text(f"User-agent: *\nDisallow:\nSitemap: {site.url}/sitemap_index.xml\n")
        (root / "sitemap_index.xml").write_text(
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{site.url}/docs.xml.gz</loc></sitemap><sitemap><loc>{site.url}/missing.xml</loc>"
            "</sitemap></sitemapindex>")
        (root / "docs.xml.gz").write_bytes(gzip.compress(sitemap([
            (site.url + "/guide/a.html", "2024-05-01"), (site.url + "/guide/b.html#top", None)]).encode()))
        client = WebClient(FetchSettings(delay_s=0, retries=0))
        pages = read_sitemaps(client, site.url + "/guide/", read_robots(client, site.url + "/guide/"))
    assert pages == {site.url + "/guide/a.html": "2024-05-01", site.url + "/guide/b.html": None}


def test_page_links_obey_the_pages_robots_meta_and_skip_files() -> None:
    from knowledge.web_discovery import page_links

    html = ('<html><head><base href="/docs/v2/"><meta name="robots" content="noindex, follow"></head><body>'
            '<a href="setup.html#linux">Setup</a> <a href="../v1/old.html" rel="nofollow">old</a> '
            '<a href="guide.pdf">PDF</a> <a href="mailto:help@example.com">mail</a> <a href="#top">top</a>'
            '</body></html>')
    links, may_index, may_follow = page_links(html, "https://docs.example.com/docs/index.html")
    assert links == ["https://docs.example.com/docs/v2/setup.html"]
    assert (may_index, may_follow) == (False, True)


def test_a_malformed_link_or_sitemap_entry_is_passed_over_and_a_gzip_bomb_refused() -> None:
    import gzip

    from knowledge.web_discovery import _maybe_gunzip, page_links

    html = ('<a href="http://docs.example:99999/x">bad port</a> <a href="http://[::1/y">broken host</a> '
            '<a href="guide/">good</a>')
    links, may_index, may_follow = page_links(html, "https://docs.example/start/")
    assert links == ["https://docs.example/start/guide/"] and may_index and may_follow
    small = gzip.compress(b"<urlset/>")
    assert _maybe_gunzip(small) == b"<urlset/>"
    bomb = gzip.compress(b"\0" * (51 * 1024 * 1024))  # 51 MB of zeros: about 50 KB compressed
    with pytest.raises(ValueError, match="unpacks to more than 50 MB"):
        _maybe_gunzip(bomb)


def test_a_redirect_is_followed_within_the_site_and_refused_off_it_before_any_request(tmp_path) -> None:
    from knowledge.web_fetch import FetchSettings, WebClient

    root = copy_pages(tmp_path / "site")
    (tmp_path / "elsewhere").mkdir()
    with serve(tmp_path / "elsewhere") as other, serve(root) as site:
        site.faults["/old.html"] = [(301, {"Location": VENV})]
        site.faults["/away.html"] = [(302, {"Location": f"{other.url}/tutorial/offsite.html"})]
        client = WebClient(FetchSettings(delay_s=0, retries=0))
        moved = client.get(site.url + "/old.html", html_only=True)
        away = client.get(site.url + "/away.html", html_only=True)
    assert (moved.status, moved.url) == (200, site.url + VENV) and b"Virtual Environments" in moved.body
    assert (away.status, away.body) == (302, b"")
    assert away.refused == f"redirects outside the source to {other.url}/tutorial/offsite.html"
    assert other.hits == []  # nothing was sent to the other host


def test_robots_rules_match_as_rfc_9309_says_longest_rule_and_wildcards() -> None:
    from protego import Protego

    from knowledge.web_discovery import Robots
    from knowledge.web_fetch import USER_AGENT

    robots = Robots(Protego.parse("User-agent: *\nAllow: /\nDisallow: /guide/private/\nDisallow: /*?print=\n"
                                  "Allow: /guide/private/public.html$\nCrawl-delay: 2\n"
                                  "Sitemap: https://docs.example/sitemap.xml\n"), USER_AGENT)
    assert not robots.allowed("https://docs.example/guide/private/a.html")  # longer than `Allow: /`
    assert robots.allowed("https://docs.example/guide/private/public.html")  # the longest rule wins
    assert not robots.allowed("https://docs.example/guide/a.html?print=1")  # a wildcard
    assert robots.allowed("https://docs.example/guide/a.html")
    assert (robots.crawl_delay, robots.sitemaps) == (2.0, ["https://docs.example/sitemap.xml"])


def test_a_page_with_a_long_non_ascii_name_is_stored_under_a_name_the_filesystem_takes() -> None:
    from knowledge.web_discovery import _safe_segment

    name = _safe_segment("文" * 100 + ".html")  # 305 bytes: over the 255 a file name may have
    assert len(name.encode()) <= 120 and name.startswith("文" * 26) and name.endswith(".html")
