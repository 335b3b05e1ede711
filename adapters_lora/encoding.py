"""Voice examples -> token ids with labels, in exactly the prompt format the bot serves.

The prompt (system, documentation passages, question) comes from bot.prompting, the same
code that builds prompts at answer time, so the adapter learns the voice for the prompts it
will really see. Loss is on the reply only: prompt positions get label -100.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters_lora.dataset import VoiceExample
from bot.prompting import SYSTEM_PROMPT, build_messages

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def reply_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def prompt_messages(example: VoiceExample) -> list[dict[str, str]]:
    if example.messages:
        return [{"role": role, "content": content} for role, content in example.messages[:-1]]
    if example.context:
        messages = build_messages(example.question, example.context, history=[])
        return [{"role": m.role, "content": m.content} for m in messages]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": example.question}]


def encode_example(tokenizer, example: VoiceExample, max_tokens: int) -> EncodedExample | None:
    """Token ids and labels, or None when the example does not fit `max_tokens`."""
    prompt = prompt_messages(example)
    prompt_ids = _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
    full_ids = _ids(tokenizer.apply_chat_template(
        prompt + [{"role": "assistant", "content": example.answer}], tokenize=True))
    if full_ids[: len(prompt_ids)] != prompt_ids:
        # A template that renders the prompt differently once a reply follows: append the
        # reply tokens ourselves so the boundary is exact.
        reply = _ids(tokenizer(example.answer, add_special_tokens=False)["input_ids"])
        full_ids = prompt_ids + reply + [tokenizer.eos_token_id]
    if len(full_ids) > max_tokens:
        return None
    labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids):]
    return EncodedExample(full_ids, labels)


def _ids(value) -> list[int]:
    """apply_chat_template returns a list, or a BatchEncoding in newer transformers."""
    if isinstance(value, dict) or hasattr(value, "keys"):
        value = value["input_ids"]
    return list(value)
