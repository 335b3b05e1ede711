"""Loaders per format, and bad files skipped with a reason a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loaders import LoadError, load_file
from tests.helpers import write_pdf

UTF8 = ["utf-8"]
BIG = 10_000_000


def load(path: Path, encodings: list[str] = UTF8, max_bytes: int = BIG):
    loaded, _ = load_file(path, path.name, encodings, max_bytes)
    return loaded


def test_markdown_headings_code_fences_and_front_matter(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(
        "---\ntitle: \"Install guide\"\n---\nIntro text.\n\n# Install\n\nGeneral steps.\n\n"
        "## Windows<a name=\"win\"></a>\n\nRun the \\-installer.\n\n```bash\n# not a heading\nmsiexec /i x.msi\n```\n\n"
        "Setext heading\n--------------\n\nUnder setext.\n"
    )
    loaded = load(doc)
    assert loaded.title == "Install guide"
    paths = [s.heading_path for s in loaded.sections]
    assert paths == [(), ("Install",), ("Install", "Windows"), ("Install", "Setext heading")]
    windows = loaded.sections[2].text
    assert "# not a heading" in windows and "msiexec" in windows
    assert "-installer" in windows and "\\-" not in windows


def test_rst_sections_come_from_docutils(tmp_path: Path) -> None:
    doc = tmp_path / "conf.rst"
    doc.write_text("Configuration\n=============\n\nThe file.\n\nKeys\n----\n\n``sync_interval_seconds`` is 30.\n")
    loaded = load(doc)
    assert loaded.title == "Configuration"
    assert [s.heading_path for s in loaded.sections] == [("Configuration",), ("Configuration", "Keys")]
    assert "sync_interval_seconds is 30" in loaded.sections[1].text


def test_plain_text_title_and_shouting_headings(tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("Connectivity guide\n\nIntro line.\n\nPROXY SETTINGS\nSet HTTPS_PROXY.\n\nFirewall\n--------\nOpen 443.\n")
    loaded = load(doc)
    assert loaded.title == "Connectivity guide"
    headings = [s.heading_path[-1] for s in loaded.sections]
    assert headings == ["Connectivity guide", "PROXY SETTINGS", "Firewall"]


def test_html_drops_navigation_and_footer(tmp_path: Path) -> None:
    doc = tmp_path / "page.html"
    doc.write_text(
        "<html><head><title>Refunds | Acme</title><script>var x=1;</script></head><body>"
        "<nav><a href='/'>Home</a> Menu link</nav><h1>Refund policy</h1><p>Full refund within 14 days.</p>"
        "<h2>How to ask</h2><ul><li>Open <b>Billing</b></li><li>Click Request refund</li></ul>"
        "<footer>Copyright boilerplate</footer></body></html>"
    )
    loaded = load(doc)
    assert loaded.title == "Refund policy"
    text = " ".join(s.text for s in loaded.sections)
    assert "14 days" in text and "- Open Billing" in text
    assert "Menu link" not in text and "boilerplate" not in text and "var x" not in text
    assert loaded.sections[-1].heading_path == ("Refund policy", "How to ask")


def test_html_paragraphs_written_as_divs_are_read_with_their_lists(tmp_path: Path) -> None:
    """DocBook/Publican pages (the Debian handbook) write every paragraph as <div class="para">."""
    doc = tmp_path / "sect.apt-get.html"
    doc.write_text(
        "<html><body><div class='section'><div class='titlepage'><h2>6.2.1. Initialization</h2></div>"
        "<div class='para'>\n\tThe list is updated through <code class='command'>apt update</code>. It can take"
        " a while.<!-- a comment --><div class='itemizedlist'><ul><li><div class='para'>from a CD-ROM</div></li>"
        "</ul></div></div></div></body></html>"
    )
    loaded = load(doc)
    text = loaded.sections[0].text
    assert "The list is updated through apt update. It can take a while." in text
    assert "- from a CD-ROM" in text and "comment" not in text
    assert text.count("CD-ROM") == 1  # the list is read once, as a list, not again inside its paragraph


def test_pdf_text_per_page(tmp_path: Path) -> None:
    doc = write_pdf(tmp_path / "sla.pdf", ["Service level agreement\nUptime is 99.9 percent.", "Credits apply."],
                    title="SLA")
    loaded = load(doc)
    assert loaded.title == "SLA"
    assert len(loaded.sections) == 2
    assert "99.9" in loaded.sections[0].text and loaded.sections[1].heading_path == ("SLA", "Page 2")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("blank.txt", b"   \n\n  ", "empty file"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR" + bytes(range(256)), "binary content"),
        ("latin1.md", "Caf\u00e9 prices".encode("latin-1"), "not valid utf-8 text (byte 0xe9 at offset 3)"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "corrupt PDF"),
        ("fake.pdf", b"hello world", "corrupt PDF (missing %PDF header)"),
        ("image.png", b"\x89PNG....", "unsupported file type .png"),
    ],
)
def test_bad_files_raise_a_clear_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as caught:
        load(path)
    assert reason in str(caught.value)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text("# Huge\n\n" + "word " * 5000)
    with pytest.raises(LoadError, match=r"too large \(0\.0 MB > limit 0\.0 MB\)"):
        load(path, max_bytes=1000)


def test_configured_fallback_encoding_reads_legacy_files(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("Men\u00fc\n\nCaf\u00e9 pricing is 5 \u20ac.".encode("cp1252"))
    loaded = load(path, encodings=["utf-8", "cp1252"])
    assert "Caf\u00e9 pricing is 5 \u20ac." in loaded.sections[0].text


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "wide.md"
    path.write_bytes("# Wide\n\nUTF-16 text here.".encode("utf-16"))
    assert load(path).sections[0].text == "UTF-16 text here."
