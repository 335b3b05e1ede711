"""Loaders per format, and bad files skipped with a reason a user can act on."""

from __future__ import annotations

import re
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


# ----- CommonMark: the cases a line-by-line reader got wrong ------------------------------

def test_markdown_indented_code_is_code_and_its_hash_lines_are_not_headings(tmp_path: Path) -> None:
    doc = tmp_path / "cli.md"
    doc.write_text("# CLI\n\nRun this:\n\n    # comment, not a heading\n    driftctl sync --all\n\nDone.\n")
    loaded = load(doc)
    assert [s.heading_path for s in loaded.sections] == [("CLI",)]
    assert loaded.sections[0].text == "Run this:\n\n```\n# comment, not a heading\ndriftctl sync --all\n```\n\nDone."


def test_markdown_html_blocks_and_lists_holding_hashes_open_no_sections(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text(
        "# Notes\n\n<details>\n<summary>Why</summary>\n# inside the HTML block\n</details>\n\n"
        "<!-- editor's note: do not index -->\n\n"
        "- step one\n- # not a section\n  still the item\n\n## Real section\n\nBody.\n")
    loaded = load(doc)
    assert [s.heading_path for s in loaded.sections] == [("Notes",), ("Notes", "Real section")]
    notes = loaded.sections[0].text
    assert "Why # inside the HTML block" in notes and "editor's note" not in notes
    assert "- step one\n- not a section\n  still the item" in notes


def test_markdown_reference_links_resolve_and_their_definitions_are_not_text(tmp_path: Path) -> None:
    doc = tmp_path / "links.md"
    doc.write_text("# Links\n\nSee the [status page][status] or <https://help.example.com>.\n\n"
                   "[status]: https://status.example.com \"Status\"\n")
    text = load(doc).sections[0].text
    assert text == "See the [status page](https://status.example.com) or [https://help.example.com](https://help.example.com)."


def test_mdx_drops_imports_exports_and_jsx_but_keeps_their_text(tmp_path: Path) -> None:
    doc = tmp_path / "setup.mdx"
    doc.write_text(
        "---\ntitle: Setup\n---\nimport Tabs from '@theme/Tabs';\nimport TabItem from '@theme/TabItem';\n\n"
        "export const meta = {\n  sidebar: true,\n};\n\n## Install\n\n<Tabs>\n  <TabItem value=\"mac\" label=\"macOS\">\n"
        "    Install with `brew install driftctl`.\n  </TabItem>\n</Tabs>\n\n{/* hidden note */}\n\n"
        "```jsx\n<Tabs>kept inside code</Tabs>\n```\n")
    loaded = load(doc)
    assert loaded.title == "Setup"
    assert [s.heading_path for s in loaded.sections] == [("Install",)]
    assert loaded.sections[0].text == "Install with `brew install driftctl`.\n\n```jsx\n<Tabs>kept inside code</Tabs>\n```"


def test_mdx_keeps_tags_written_in_inline_code(tmp_path: Path) -> None:
    doc = tmp_path / "tabs.mdx"
    doc.write_text("## Tabs\n\nWrap the choices in `<Tabs>` and each in ``<TabItem value=\"mac\">``.\n\n"
                   "<Tabs>\n  <TabItem value=\"mac\">\n    Close `</TabItem>` before the next one.\n  </TabItem>\n</Tabs>\n")
    assert load(doc).sections[0].text == ("Wrap the choices in `<Tabs>` and each in `<TabItem value=\"mac\">`.\n\n"
                                          "Close `</TabItem>` before the next one.")


def test_html_page_furniture_marked_by_role_or_footer_id_is_not_text(tmp_path: Path) -> None:
    doc = tmp_path / "git-tag.html"
    doc.write_text(
        "<html><body><div class='related' role='navigation'><ul><li>previous | next</li></ul></div>"
        "<div id='header'><h1>git-tag(1)</h1></div><div class='sect1'><h2 id='_name'>NAME</h2>"
        "<div class='paragraph'><p>git-tag - Create, list, delete or verify a tag object</p></div></div>"
        "<div id='footer'><div id='footer-text'>Last updated 2024-05-31 00:35:55 UTC</div></div>"
        "<div class='footer'>&copy; Copyright 2001-2024.</div></body></html>")
    loaded = load(doc)
    assert [(s.heading_path, s.text) for s in loaded.sections] == [
        (("git-tag(1)", "NAME"), "git-tag - Create, list, delete or verify a tag object")]


def test_html_pre_is_a_code_block_and_headings_keep_their_ids(tmp_path: Path) -> None:
    doc = tmp_path / "shell.html"
    doc.write_text(
        "<html><body><h1>Shell</h1><section id='sync-now'><h2>Sync now<a class='headerlink' href='#sync-now'>¶</a>"
        "</h2><p>Run:</p><pre>$ driftctl sync\nsynced 3 folders</pre></section></body></html>")
    loaded = load(doc)
    section = loaded.sections[-1]
    assert (section.heading_path, section.anchor) == (("Shell", "Sync now"), "sync-now")
    assert section.text == "Run:\n\n```\n$ driftctl sync\nsynced 3 folders\n```"


def test_word_headings_are_sections_lists_are_items_and_tables_are_rows(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Onboarding"
    document.add_heading("Accounts", level=1)
    document.add_paragraph("Every new hire gets an account on day one.")
    document.add_paragraph("Open the admin console", style="List Bullet")
    document.add_heading("Plans", level=2)
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, [("Plan", "Seats"), ("Team", "25"), ("Enterprise", "unlimited")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.add_paragraph("Prices are per month.")
    document.save(tmp_path / "onboarding.docx")
    loaded = load(tmp_path / "onboarding.docx")
    assert loaded.title == "Onboarding"
    assert [s.heading_path for s in loaded.sections] == [("Accounts",), ("Accounts", "Plans")]
    assert loaded.sections[0].text == "Every new hire gets an account on day one.\n\n- Open the admin console"
    assert loaded.sections[1].text == ("| Plan | Seats |\n|---|---|\n| Team | 25 |\n| Enterprise | unlimited |\n\n"
                                       "Prices are per month.")


def test_notebook_markdown_cells_and_code_cells_without_outputs(tmp_path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"language": "python", "name": "python3", "display_name": "Python 3"}})
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Sync API\n\nCall the client once per folder."),
        nbformat.v4.new_code_cell("client.sync('/docs')", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="synced 1,024 files in 3.2s")]),
        nbformat.v4.new_markdown_cell("## Errors\n\n`E42` means the token expired."),
    ]
    (tmp_path / "sync.ipynb").write_text(nbformat.writes(notebook))
    loaded = load(tmp_path / "sync.ipynb")
    assert loaded.title == "Sync API"
    assert [(s.heading_path, s.text) for s in loaded.sections] == [
        (("Sync API",), "Call the client once per folder.\n\n```python\nclient.sync('/docs')\n```"),
        (("Sync API", "Errors"), "`E42` means the token expired."),
    ]


@pytest.mark.parametrize("name, content, reason", [
    ("broken.docx", b"PK\x03\x04 not really a zip", "corrupt Word document"),
    ("broken.ipynb", b'{"cells": [', "not a Jupyter notebook"),
])
def test_bad_word_files_and_notebooks_are_skipped_with_a_reason(tmp_path: Path, name: str, content: bytes,
                                                                  reason: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        load(tmp_path / name)


GITFAQ = Path("/usr/share/doc/git-doc/gitfaq.html")
HANDBOOK_FIREWALL = Path("/usr/share/doc/debian-handbook/html/en-US/sect.firewall-packet-filtering.html")
PYTHON_FAQ_WINDOWS = Path("/usr/share/doc/python3.11/html/faq/windows.html")


def test_html_ordered_lists_are_numbered_steps_in_one_block(tmp_path: Path) -> None:
    """A procedure written as <ol> reads as numbered steps (the composer leads a how-to with them),
    as it does from Markdown; it loaded as "- " bullets. Each item stays a paragraph of its own (as
    chunking has always packed them), and the steps still read as one list."""
    from bot.passage_units import split_units

    page = tmp_path / HANDBOOK_FIREWALL.name
    page.write_bytes(HANDBOOK_FIREWALL.read_bytes())  # a real DocBook page (apt-get install debian-handbook)
    text = next(s.text for s in load(page).sections if "seven layers" in s.text)
    assert ("The following seven layers are described:\n\n"
            "1. Physical: transmission and reception of raw bit streams over a physical medium\n\n"
            "2. Data Link: reliable transmission of data frames between two nodes connected by a physical layer\n\n"
            "3. Network:") in text
    steps = [u for u in split_units(text, 1) if u.text[:2] in ("1.", "2.", "3.")]
    assert len({u.block for u in steps}) == 1
    numbered = tmp_path / "numbered.html"
    numbered.write_text("<html><body><h1>Upgrade</h1><ol start='4'><li>Back up.</li><li>Run <b>apt</b>.</li></ol>"
                        "<ul><li>a note</li></ul></body></html>")
    assert load(numbered).sections[0].text == "4. Back up.\n\n5. Run apt.\n\n- a note"
    odd_start = tmp_path / "odd.html"
    odd_start.write_text("<html><body><h1>T</h1><ol start='x'><li>a.</li><li>b.</li></ol></body></html>")
    assert load(odd_start).sections[0].text == "1. a.\n\n2. b."


def test_html_inline_elements_run_on_as_written(tmp_path: Path) -> None:
    """Inline markup is not a word break: git-doc's gitfaq read "like bash or dash ," and
    "What should I put in user.name ?" (each element's text was joined with a space), and
    an answer quoted it so. Whitespace in HTML prose is one space; a line break or a nested
    block still parts words."""
    page = tmp_path / "gitfaq.html"
    page.write_bytes(GITFAQ.read_bytes())  # a real asciidoc page (apt-get install git-doc)
    text = "\n\n".join(s.text for s in load(page).sections)
    assert "assume a standard POSIX shell, like bash or dash, and a user, A U Thor, who has" in text
    assert "What should I put in user.name?" in text
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks keep their own spacing
    assert " ," not in prose and " ?" not in prose
    made = tmp_path / "made.html"
    made.write_text("<html><body><h1>T</h1><p>we have <em>released</em>, so a <code>tree-ish</code>.</p>"
                    "<ul><li><p>First.</p><p>Second.</p></li><li>one<br>two</li></ul>"
                    "<p>Drift<span>wood</span> <!-- hidden --> syncs\n   files.</p></body></html>")
    assert load(made).sections[0].text == ("we have released, so a tree-ish.\n\n- First. Second.\n\n- one two\n\n"
                                           "Driftwood syncs files.")


def test_website_pages_number_ordered_lists_too() -> None:
    from knowledge.web_page import load_web_page

    loaded = load_web_page(PYTHON_FAQ_WINDOWS.read_bytes(), "faq/windows.html", UTF8)  # python3-doc, Sphinx
    text = next(s.text for s in loaded.sections if "embed Python into a Windows application" in s.heading_path[-1])
    assert "can be summarized as follows:\n\n1. Do not build Python into your .exe file directly." in text
    assert "\n2. " in text
    nested = (b"<html><body><article><h1>Steps</h1><p>Read these steps before you start the upgrade of the server.</p>"
              b"<ol><li>Stop the <b>service</b>.<ul><li>web</li><li>worker</li></ul></li><li>Upgrade it.</li></ol>"
              b"<p>Then start the service again and check its log for errors.</p></article></body></html>")
    assert "1. Stop the service. web worker\n2. Upgrade it." in load_web_page(nested, "s.html", UTF8).sections[0].text
