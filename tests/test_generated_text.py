"""Tidying what a small model generates, and keeping only citations that exist."""

from __future__ import annotations

from bot.generated_text import cited_numbers, tidy


def test_runaway_new_prompt_is_cut() -> None:
    assert tidy("Use msiexec /qn [1].\n### Question\nWhat else?") == "Use msiexec /qn [1]."
    assert tidy("Drag it to Applications [1].\n\n[2] Install on Linux (setup/install-linux.md)\nmore") == (
        "Drag it to Applications [1].")
    assert tidy("It costs $8 [1].\nQuestion: and Business?") == "It costs $8 [1]."


def test_loops_and_marker_lists_are_cut() -> None:
    looped = "Retry later. " + "the sync will retry again soon, " * 6
    assert tidy(looped, finish_sentence=False).count("the sync will retry again soon") == 1
    assert tidy("See the docs [1] [2] [3] [4] [5] [6] [7].") == "See the docs."
    assert tidy("Ahoy!\n\n" * 12 + "Use **Rotate** [1].") == "Ahoy!\n\nUse **Rotate** [1]."
    two_prices = "Team is **$8 per user per month billed annually** or **$10 per user per month billed monthly**."
    assert tidy(two_prices) == two_prices  # a phrase said twice is not a loop
    assert tidy("It stores 1000000000 bytes.") == "It stores 1000000000 bytes."


def test_cut_off_reply_ends_on_its_last_whole_sentence() -> None:
    text = ("When a payment fails:\n\n1. **Retry**: it retries three times over 7 days.\n2. The account becomes "
            "read-only once every retry has failed and the admins")
    assert tidy(text) == "When a payment fails:\n\n1. **Retry**: it retries three times over 7 days."
    assert tidy("Short answer without a stop") == "Short answer without a stop"
    signed = "Ahoy!\n\nClick **Rotate** [1].\n\nSmooth sailing! \u2014 the Driftwood crew"
    assert tidy(signed) == signed


def test_only_existing_citations_survive_in_first_cited_order() -> None:
    text, numbers = cited_numbers("Do this [2]. Then that [5] and [1, 9]. Again [2].", available=3)
    assert text == "Do this [2]. Then that and [1]. Again [2]."
    assert numbers == [2, 1]
