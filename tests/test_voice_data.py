"""Voice datasets are validated line by line, and training masks the prompt out of the loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters_lora.dataset import DatasetError, load_examples, parse_context, require_enough, split_held_out
from adapters_lora.encoding import IGNORE_INDEX, encode_example
from adapters_lora.registry import RegistryError, VoiceRegistry
from bot.app.voices import bundled_voice_dataset

GOOD = {"question": "How do I rotate a key?", "answer": "Ahoy! Click **Rotate** [1].\nSmooth sailing!",
        "context": "[1] API authentication > Rotating keys\nIn Settings > API keys, open the key and click Rotate."}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_problem_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "voice.jsonl", [
        json.dumps(GOOD),
        "{not json",
        json.dumps({"question": "No answer here"}),
        json.dumps({**GOOD, "question": "how do I ROTATE a key?"}),
        json.dumps({"question": "Long?", "answer": "x" * 5000}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]}),
        json.dumps(["a", "list"]),
    ])
    with pytest.raises(DatasetError) as caught:
        load_examples(path)
    problems = caught.value.problems
    assert problems == [
        "line 2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        "line 3: missing or empty 'answer'",
        "line 4: duplicate question (same as line 1)",
        "line 5: 'answer' is 5000 characters (limit 4000)",
        "line 6: the last message must be the assistant's reply",
        "line 7: expected a JSON object",
    ]


def test_context_blocks_and_chat_messages_are_understood(tmp_path: Path) -> None:
    passages = parse_context("[1] Plans > Team\nTeam is $8.\n\n[2] Plans > Business\nBusiness is $15.")
    assert [(p.location, p.text) for p in passages] == [("Plans > Team", "Team is $8."),
                                                        ("Plans > Business", "Business is $15.")]
    path = write_lines(tmp_path / "chat.jsonl", [json.dumps({"messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Ahoy!"}]})])
    (example,) = load_examples(path)
    assert example.question == "Hi" and example.answer == "Ahoy!" and example.messages


def test_bundled_sample_voice_is_valid_and_splits_deterministically() -> None:
    examples = load_examples(bundled_voice_dataset())
    assert len(examples) >= 150
    assert all(e.answer.rstrip().endswith("Smooth sailing! \u2014 the Driftwood crew") for e in examples)
    train, held = split_held_out(examples, 0.1, seed=1234)
    again_train, again_held = split_held_out(examples, 0.1, seed=1234)
    assert held == again_held and 8 <= len(held) <= 30 and len(train) + len(held) == len(examples)


def test_labels_mask_the_prompt_and_keep_the_reply(model_cache: Path) -> None:
    from transformers import AutoTokenizer

    from adapters_lora.base_model import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("bundled", model_cache))
    (example,) = load_examples(write_lines(model_cache.parent / "one.jsonl", [json.dumps(GOOD)]))
    encoded = encode_example(tokenizer, example, max_tokens=1024)
    assert encoded is not None
    reply_start = next(i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX)
    assert all(label == IGNORE_INDEX for label in encoded.labels[:reply_start])
    assert encoded.labels[reply_start:] == encoded.input_ids[reply_start:]
    prompt_text = tokenizer.decode(encoded.input_ids[:reply_start])
    reply_text = tokenizer.decode(encoded.labels[reply_start:], skip_special_tokens=True)
    assert "### Question\nHow do I rotate a key?" in prompt_text and "click Rotate" in prompt_text
    assert reply_text.strip() == GOOD["answer"]
    assert encode_example(tokenizer, example, max_tokens=20) is None


def test_registry_names_activation_and_rollback(tmp_path: Path) -> None:
    registry = VoiceRegistry(tmp_path / "voices")
    for name in ("v1", "v2"):
        with registry.staging(name) as folder:
            (folder / "voice.json").write_text(json.dumps({"name": name}))
    assert [v.name for v in registry.list()] == ["v1", "v2"]
    with pytest.raises(RegistryError, match="already exists"):
        with registry.staging("v1"):
            pass
    with pytest.raises(RegistryError, match="reserved"):
        registry.check_name("base")
    with pytest.raises(RegistryError, match="no voice named 'v9'"):
        registry.activate("v9")
    assert registry.activate("v1") is None
    assert registry.activate("v2") == "v1"
    assert registry.rollback() == "v1" and registry.active == "v1"
    assert registry.rollback() is None and registry.active is None
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()


def test_a_bad_byte_names_its_line_and_hides_no_other_problem(tmp_path: Path) -> None:
    path = tmp_path / "voice.jsonl"
    good = '{"question": "How much is Team?", "answer": "Team is $8 per user per month."}\n'
    path.write_bytes(good.encode() + b'{"question": "Caf\xe9?", "answer": "Yes."}\n' + b'{"question": ""}\n')
    with pytest.raises(DatasetError) as caught:
        load_examples(path)
    assert caught.value.problems == ["line 2: not UTF-8 text (byte 0xe9 at column 18)",
                                     "line 3: missing or empty 'question' and 'answer'"]


def test_too_few_examples_to_make_a_voice_are_refused_with_the_reason(tmp_path: Path) -> None:
    lines = bundled_voice_dataset().read_text(encoding="utf-8").splitlines()
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        require_enough(few, load_examples(few))
    assert caught.value.problems == [
        "3 example(s); a voice needs at least 30 (3 held out to stop training before it memorises, the rest to "
        "learn the tone; the bundled sample voice has 227)"]
    assert len(load_examples(bundled_voice_dataset())) == 227
    require_enough(few, load_examples(bundled_voice_dataset()))
