"""Chunks stay within the embedder's token budget, follow headings, and overlap a little."""

from __future__ import annotations

import pytest

from knowledge.chunking import Chunker, ChunkSettings
from knowledge.documents import Document, Section
from knowledge.embedding import Embedder


def make_doc(sections: list[Section], title: str = "Guide") -> Document:
    return Document(collection="docs", source="guide.md", title=title, sections=sections,
                    content_hash="h", mtime=0.0)


LONG_SECTION = " ".join(
    f"Step {i}: open the settings panel, choose the sync folder number {i}, and confirm the change." for i in range(60)
)


def test_every_chunk_fits_the_token_budget_including_its_title(embedder: Embedder) -> None:
    settings = ChunkSettings(max_tokens=64, overlap_tokens=16)
    doc = make_doc([
        Section(("Guide",), "Short intro."),
        Section(("Guide", "Very long section"), LONG_SECTION),
        Section(("Guide", "Table"), " ".join(["cell"] * 400)),  # no sentence ends at all
    ])
    chunks = Chunker(embedder.token_offsets, settings).chunk(doc)
    sizes = embedder.count_tokens([c.search_text for c in chunks])
    assert max(sizes) <= 64
    assert len(chunks) > 10
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # Nothing was lost: every step of the long section is in some chunk.
    joined = " ".join(c.text for c in chunks)
    assert all(f"Step {i}:" in joined for i in range(60))


def test_chunks_follow_headings_and_never_mix_sections(embedder: Embedder) -> None:
    doc = make_doc([Section(("Guide", "Install"), "Install text."), Section(("Guide", "Billing"), "Billing text.")])
    chunks = Chunker(embedder.token_offsets).chunk(doc)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide > Install", "Install text."), ("Guide > Billing", "Billing text."),
    ]
    # The title is not repeated when the heading path starts with it.
    assert chunks[0].search_text == "Guide > Install\nInstall text."


def test_consecutive_chunks_of_a_long_section_overlap(embedder: Embedder) -> None:
    chunks = Chunker(embedder.token_offsets, ChunkSettings(max_tokens=80, overlap_tokens=30)).chunk(
        make_doc([Section(("Guide", "Steps"), LONG_SECTION)])
    )
    assert len(chunks) >= 3
    for before, after in zip(chunks, chunks[1:]):
        last_sentence = before.text.rsplit("Step ", 1)[-1]
        assert after.text.startswith("Step " + last_sentence), "the next chunk repeats the previous tail"


def test_a_long_list_cut_into_sentences_keeps_each_item_on_its_own_line(embedder: Embedder) -> None:
    # a Markdown list too long for one chunk is one paragraph (no blank lines): it is cut at
    # sentence ends, and rejoining those with a space ran the steps together ("... job. 4. Provide")
    steps = "\n".join(f"{i}. Choose **Option {i}** in the console. Then confirm the change for sync folder {i}."
                      for i in range(1, 13))
    chunks = Chunker(embedder.token_offsets, ChunkSettings(max_tokens=80, overlap_tokens=16)).chunk(
        make_doc([Section(("Guide", "Steps"), steps)])
    )
    assert len(chunks) >= 3
    lines = [line for chunk in chunks for line in chunk.text.split("\n")]
    assert "1. Choose **Option 1** in the console. Then confirm the change for sync folder 1." in lines
    for i in range(1, 13):
        assert not any(f". {i}. Choose" in line for line in lines), f"step {i} was run into the line before it"
    # the sentences of one item are still one line (a chunk may open on an item's second
    # sentence, the overlap it repeats from the chunk before)
    items = tuple(f"{i}. Choose" for i in range(1, 13))
    assert all(line.startswith(items) for chunk in chunks for line in chunk.text.split("\n")[1:])


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (100, 60), (100, -1)])
def test_invalid_chunk_settings_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap)
