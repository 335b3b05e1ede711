"""One set of checks per core Protocol, run against the real implementation the composition
root wires in and against every fake the tests use in its place, so a fake cannot drift from
what it stands for (a fake that raised ValueError where the real voice registry raises
VoiceRefused did, before these existed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.protocols import Generator, Reindexer, Retriever, StatusSource, VoiceControl, VoiceRefused
from bot.types import ChatMessage
from tests.fakes import (
    CountingReindexer,
    EmptyRetriever,
    FramingGenerator,
    MemoryVoices,
    ObedientGenerator,
    ScriptedGenerator,
    StaticStatus,
)

PASSAGE_FIELDS = {"collection": str, "source": str, "title": str, "heading": str, "text": str,
                  "location": str, "score": float, "relevant": bool}


def real_retriever(core) -> Retriever:
    return core.knowledge.retriever


RETRIEVERS: dict[str, Callable[[Any], Retriever]] = {"HybridRetriever (real)": real_retriever,
                                                     "EmptyRetriever": lambda core: EmptyRetriever()}


@pytest.mark.parametrize("make", RETRIEVERS.values(), ids=RETRIEVERS.keys())
def test_retriever_contract(make, core) -> None:
    retriever = make(core)
    assert isinstance(retriever, Retriever)
    passages = list(retriever.search("How much does the Team plan cost?", k=2))
    assert len(passages) <= 2
    for passage in passages:
        for name, kind in PASSAGE_FIELDS.items():
            assert isinstance(getattr(passage, name), kind), name
        assert passage.url is None or isinstance(passage.url, str)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert list(retriever.search("How much does the Team plan cost?", k=3, collections=["no-such-docs"])) == []


GENERATORS: dict[str, Callable[[Any], Generator]] = {
    "TransformersGenerator (real)": lambda core: core.generator,
    "ScriptedGenerator": lambda core: ScriptedGenerator(),
    "FramingGenerator": lambda core: FramingGenerator("Hi!", "Cheers."),
    "ObedientGenerator": lambda core: ObedientGenerator(),
}
PROMPT = [ChatMessage(role="system", content="Answer in one short sentence."),
          ChatMessage(role="user", content="Say hello.")]


@pytest.mark.slow
@pytest.mark.parametrize("make", GENERATORS.values(), ids=GENERATORS.keys())
def test_generator_contract(make, core) -> None:
    generator = make(core)
    assert isinstance(generator, Generator)
    for voice in (None, "base"):  # the active voice (none is active here), and the bare base model
        text = generator.generate(PROMPT, max_new_tokens=6, voice=voice)
        assert isinstance(text, str) and text.strip()
        pieces = list(generator.stream(PROMPT, max_new_tokens=6, voice=voice))
        assert pieces and all(isinstance(p, str) for p in pieces) and "".join(pieces).strip()


def real_voices(core, tmp_path) -> VoiceControl:
    from adapters_lora.registry import VoiceRegistry
    from bot.app.voices import Voices

    return Voices(core.settings, VoiceRegistry(tmp_path / "voices"))


VOICES: dict[str, Callable[[Any, Any], VoiceControl]] = {"Voices (real)": real_voices,
                                                         "MemoryVoices": lambda core, tmp: MemoryVoices()}


@pytest.mark.parametrize("make", VOICES.values(), ids=VOICES.keys())
def test_voice_control_contract(make, core, tmp_path) -> None:
    voices = make(core, tmp_path)
    assert isinstance(voices.voice_names(), list)
    assert voices.active_voice() is None or voices.active_voice() in voices.voice_names()
    with pytest.raises(VoiceRefused, match="no voice named 'no-such-voice'"):
        voices.activate_voice("no-such-voice")
    with pytest.raises(VoiceRefused, match="nothing to roll back to"):
        voices.rollback_voice()


REINDEXERS: dict[str, Callable[[Any], Reindexer]] = {"IndexOperations (real)": lambda core: core.index_ops,
                                                     "CountingReindexer": lambda core: CountingReindexer()}


@pytest.mark.parametrize("make", REINDEXERS.values(), ids=REINDEXERS.keys())
def test_reindexer_contract(make, core) -> None:
    progress: list[tuple[str, int, int]] = []
    outcome = make(core).reindex(lambda stage, done, total: progress.append((stage, done, total)),
                                 started_by="contract-test", trigger="chat")
    assert isinstance(outcome.summary(), str) and outcome.summary()
    data = outcome.to_dict()
    json.dumps(data)  # the /reindex reply carries it as data
    assert data.get("went_live") in (True, False) or "rejected" in data
    assert progress and all(isinstance(s, str) and 0 <= d <= t for s, d, t in progress)


STATUS: dict[str, Callable[[Any], StatusSource]] = {"StatusReport (real)": lambda core: core.status_report,
                                                    "StaticStatus": lambda core: StaticStatus()}


@pytest.mark.parametrize("make", STATUS.values(), ids=STATUS.keys())
def test_status_source_contract(make, core) -> None:
    info = make(core).status()
    assert isinstance(info["index_version"], int) and info["index_version"] >= 1
    assert isinstance(info["documents"], int)
    json.dumps(info)  # `supportbot status --json` prints it
