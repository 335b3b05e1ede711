"""The answer first, and follow-ups read with their conversation: real passages (the sample
docs' install pages as retrieval hands them over, a phone manual's menu), the bundled embedder,
the composer's and the answering service's public entry points."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answering import AnswerService
from bot.composer import Composer
from bot.follow_ups import standalone_question
from bot.types import Question
from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever
from knowledge.store import ChunkStore
from tests.fakes import EmptyRetriever, ScriptedGenerator
from tests.helpers import QuotedPassage as Passage, write_docs

SAMPLE_SETUP = Path(__file__).parents[1] / "knowledge" / "sample_docs" / "setup"


@pytest.fixture(scope="module")
def composer(embedder: Embedder) -> Composer:
    return Composer(embedder)


# The Windows install page as retrieval hands it over for "How do I install Driftwood on Windows?":
# the page's opening chunk, then the section with the steps under its heading.
WINDOWS = Passage(
    "This page covers installing the Driftwood desktop app and the `drift` CLI on Windows, including silent installs "
    "for IT administrators. The current release is Driftwood 4.2.0.\n\nOption 1: Run the installer:\n"
    "1. Go to https://docs.driftwood.example/download and click **Download for Windows**. Your browser saves "
    "`DriftwoodSetup.msi`.\n2. Double-click `DriftwoodSetup.msi`.\n3. Accept the license agreement and click "
    "**Install**. If User Account Control asks for permission, click **Yes**.\n4. When the installer finishes, "
    "Driftwood starts automatically and shows the sign-in window.", "Install Driftwood on Windows")

# A phone manual's Notes menu: six entries, the one that answers fifth.
NOTES_MENU = Passage(
    "On the notes list, tap **More options** to open these items:\n\n"
    "- **Edit**: Select notes to share, lock, move or delete.\n"
    "- **View**: Show notes as a list, as titles only or as a grid.\n"
    "- **Sort**: Sort notes by date created, date modified or title.\n"
    "- **Pin favourites to top**: Keep your favourite notes above the others.\n"
    "- **Trash**: View deleted notes. Notes stay in the trash for 30 days before they are deleted permanently.\n"
    "- **Settings**: Change the default font, sync notes with your account or manage PDF pen settings.",
    "Samsung Notes > Notes menu")


def _one_citation_per_paragraph(body: str) -> bool:
    """Every paragraph (a list under its introduction counts with it) cites once, at its end."""
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    return all(len(re.findall(r"\[\d+\]", p)) <= 1 for p in paragraphs)


def test_a_how_to_gets_its_steps_before_the_page_introduction(composer: Composer) -> None:
    body = composer.compose("How do I install Driftwood on Windows?", [WINDOWS]).body
    assert body.startswith(
        "Option 1: Run the installer [1]:\n\n1. Go to https://docs.driftwood.example/download and click "
        "**Download for Windows**. Your browser saves `DriftwoodSetup.msi`.\n2. Double-click `DriftwoodSetup.msi`.\n"
        "3. Accept the license agreement and click **Install**. If User Account Control asks for permission, click "
        "**Yes**.\n4. When the installer finishes, Driftwood starts automatically and shows the sign-in window.")
    # the introduction, if it is quoted at all, comes after the steps it introduces
    assert "This page covers" not in body or body.index("This page covers") > body.index("4. When the installer")
    assert _one_citation_per_paragraph(body)


def test_where_is_gets_the_item_naming_it_under_its_menu_path_not_the_whole_menu(composer: Composer) -> None:
    composition = composer.compose("Where can I view my deleted notes?", [NOTES_MENU])
    assert composition.body == (
        "On the notes list, tap **More options** to open these items [1]:\n\n"
        "- **Trash**: View deleted notes. Notes stay in the trash for 30 days before they are deleted permanently.")
    # the same menu asked as a how-to lists the entries the page introduces, the answer among them
    listed = composer.compose("What options are in the notes list menu?", [NOTES_MENU]).body
    assert "**Edit**" in listed and "**Trash**" in listed


@pytest.mark.parametrize(("earlier", "follow_up", "whole"), [
    ("How do I install Driftwood on Windows?", "And on a Mac?", "How do I install Driftwood on a Mac?"),
    ("How do I install the desktop app on macOS?", "and for Windows?", "How do I install the desktop app for Windows?"),
    ("How do I install Driftwood on Windows?", "What about Linux?", "How do I install Driftwood on Linux?"),
    ("Where is the config file on Linux?", "And the log files?", "Where is the log files on Linux?"),
    ("How do I enable an Apache module?", "And disable one?", "How do I disable an Apache module?"),
    ("How do I install Driftwood on Windows?", "How do I uninstall it?", "How do I uninstall Driftwood on Windows?"),
    ("How do I add a user to a group?", "How do I do that from the command line?",
     "How do I add a user to a group from the command line?"),
    ("How do I search for a package by keyword?", "And show its details?",
     "How do I show details for a package by keyword?"),
    ("How do I copy a file to another machine over SSH?", "And several files in one session?",
     "How do I copy several files in one session to another machine over SSH?"),
    ("Which port does Apache listen on?", "Which directory does it serve pages from?",
     "Which directory does Apache listen on serve pages from?"),  # not "does it" taken for "do that"
    # a question that stands on its own is left alone, and so is a first question
    ("How do I install Driftwood on Windows?", "How do I reset my password?", "How do I reset my password?"),
    ("How do I install Driftwood on Windows?", "And how do I reset my password?", "And how do I reset my password?"),
])
def test_a_follow_up_reads_as_the_whole_question_it_stands_for(embedder: Embedder, earlier: str, follow_up: str,
                                                               whole: str) -> None:
    assert standalone_question(follow_up, [earlier], embedder) == whole
    assert standalone_question(follow_up, [], embedder) == follow_up


@pytest.fixture(scope="module")
def install_pages(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    """The sample docs' Windows and macOS install sections, as two pages of a real index."""
    def section(page: str, heading: str) -> str:
        text = (SAMPLE_SETUP / page).read_text(encoding="utf-8")
        title = text.splitlines()[0]
        body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        return f"{title}\n\n## {heading}\n{body}"

    docs = write_docs(tmp_path_factory.mktemp("install-docs"), {
        "install-windows.md": section("install-windows.md", "Install the desktop app"),
        "install-macos.md": section("install-macos.md", "Install the desktop app"),
    })
    store = ChunkStore(str(tmp_path_factory.mktemp("install-index") / "index"))
    Indexer(store, embedder).run([DocsRoot(docs, "docs")])
    return HybridRetriever(store, embedder)


def test_and_on_a_mac_after_a_windows_install_question_answers_with_the_mac_steps(
        install_pages: HybridRetriever, composer: Composer) -> None:
    service = AnswerService(install_pages, ScriptedGenerator(), composer=composer)
    first = service.answer(Question(text="How do I install Driftwood on Windows?", conversation_id="thread-1"))
    assert [c.source for c in first.citations] == ["install-windows.md"]
    follow = service.answer(Question(text="And on a Mac?", conversation_id="thread-1"))
    assert [c.source for c in follow.citations] == ["install-macos.md"]
    assert "1. Go to https://docs.driftwood.example/download and click **Download for macOS**." in follow.answer
    assert follow.answer.index("1. Go to") < follow.answer.index("5. Open **Driftwood**")
    assert _one_citation_per_paragraph(follow.answer)
    # the thread remembers the follow-up as the whole question, so the next one reads on from it
    assert service.memory.history("thread-1")[-1].question == "How do I install Driftwood on a Mac?"
    again = service.answer(Question(text="And on Windows?", conversation_id="thread-1"))
    assert [c.source for c in again.citations] == ["install-windows.md"]


def test_a_question_the_docs_could_not_answer_is_still_remembered_for_its_follow_up(composer: Composer) -> None:
    service = AnswerService(EmptyRetriever(), ScriptedGenerator(), composer=composer)
    first = service.answer(Question(text="How do I install Driftwood on Windows?", conversation_id="thread-2"))
    assert first.abstained
    follow = Question(text="And on a Mac?", conversation_id="thread-2")
    assert service.standalone(follow.text, service.history(follow)) == "How do I install Driftwood on a Mac?"
    # a caller that keeps the thread itself (ask --after) sends the earlier questions along
    sent = Question(text="What about Linux?", follows=("How do I install Driftwood on Windows?", "And on a Mac?"))
    assert service.standalone(sent.text, service.history(sent)) == "How do I install Driftwood on Linux?"
