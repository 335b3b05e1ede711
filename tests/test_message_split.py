"""Long answers cut for chat platforms: never inside a sentence or a citation."""

from __future__ import annotations

import re

from bot.message_split import split_message


def test_short_text_is_one_piece() -> None:
    assert split_message("The Team plan costs $8 [1].", 2000) == ["The Team plan costs $8 [1]."]


def test_cuts_fall_between_sentences_and_keep_citations_with_their_sentence() -> None:
    text = " ".join(f"Step {i} explains one more part of the setup. [{i % 3 + 1}]" for i in range(120))
    pieces = split_message(text, 500)
    assert len(pieces) > 5 and all(len(p) <= 500 for p in pieces)
    assert all(re.search(r"setup\. \[\d\]$", p) for p in pieces)  # each ends with a sentence and its citation
    assert " ".join(pieces) == text


def test_paragraphs_are_preferred_over_sentences() -> None:
    text = ("First paragraph sentence one. Sentence two [1].\n\n" + "Second paragraph. " * 5).strip()
    assert split_message(text, 60)[0] == "First paragraph sentence one. Sentence two [1]."


def test_a_sentence_longer_than_a_piece_is_cut_at_a_space_never_inside_a_citation() -> None:
    text = "word " * 300 + "end [12]."
    pieces = split_message(text, 100)
    assert all(len(p) <= 100 for p in pieces)
    assert pieces[-1].endswith("end [12].") and all("[1" not in p or "[12]" in p for p in pieces)
