"""How a voice's frame shows in the bot's real answers: each held-out question of the voice
is answered through the answering service twice, in the voice and without it, and compared.

- greeting / full sign-off: share of the voiced answers that open with one of the team's
  greetings and close with its whole sign-off, exactly as written (None: the voice has none);
- fact recall: facts of the team's reference reply that its passages hold (numbers, code,
  bold labels), kept by the voiced and by the plain answer;
- invented identifiers: identifiers of a voiced answer found neither in its plain twin, nor
  in its passages, nor in the team's own frame (names and emoji there are voice);
- unframed changes: voiced answers that are not greeting (+ the model's framing line) +
  plain answer + sign-off (a terse voice must add nothing);
- model lines: voiced answers whose greeting the model's own framing line follows;
- lead-in cost: the extra milliseconds a voiced answer spends generating.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from adapters_lora.dataset import VoiceExample
from adapters_lora.voice_eval import grounding
from bot.answering import AnswerService
from bot.grounding import missing_identifiers
from bot.types import Answer, Question
from bot.voice_frame import VoiceFrame


def frame_report(service_for: Callable[[str | None], AnswerService], name: str, frame: VoiceFrame,
                 held: Sequence[VoiceExample]) -> dict[str, Any]:
    """The frame's figures on `held` (see the module docstring); `service_for(voice)` is an
    answering service that answers in `voice` (None: without a voice)."""
    voiced_service, plain_service = service_for(name), service_for(None)
    rows = []
    for i, example in enumerate(held):
        voiced = voiced_service.answer(Question(text=example.question, conversation_id=f"frame-eval-v{i}"))
        plain = plain_service.answer(Question(text=example.question, conversation_id=f"frame-eval-p{i}"))
        rows.append((example, voiced, plain))
    return summarise(frame, rows)


def summarise(frame: VoiceFrame, rows: Sequence[tuple[VoiceExample, Answer, Answer]]) -> dict[str, Any]:
    answered = [(e, v, p) for e, v, p in rows if not v.abstained and not p.abstained]
    kept = {"voiced": 0, "plain": 0}
    expected = 0
    invented = unframed = model_lines = 0
    extra_ms: list[float] = []
    for example, voiced, plain in answered:
        for label, answer in (("voiced", voiced), ("plain", plain)):
            k, n, _ = grounding(example, answer.answer)
            kept[label] += k
        expected += grounding(example, plain.answer)[1]
        invented += bool(missing_identifiers(voiced.answer, [plain.answer, voiced.context, *frame.texts()]))
        unframed += not _framed_twin(voiced.answer, plain.answer, frame)
        model_lines += _model_line(voiced.answer, plain.answer, frame)
        extra_ms.append(voiced.timings_ms.get("generate", 0.0) - plain.timings_ms.get("generate", 0.0))
    count = len(answered)

    def share(test: Callable[[str], bool], has: bool) -> float | None:
        return round(sum(test(v.answer) for _, v, _ in answered) / count, 4) if has and count else None

    return {
        "questions": len(rows), "answered": count,
        "greeting_rate": share(frame.opens, bool(frame.greetings)),
        "sign_off_rate": share(frame.closes, bool(frame.sign_off)),
        "fact_recall": {label: round(k / expected, 4) if expected else None for label, k in kept.items()},
        "invented_identifiers": invented,
        "unframed_changes": unframed,
        "model_lines": model_lines,
        "lead_in_ms": round(statistics.fmean(extra_ms), 1) if extra_ms else None,
    }


def _framed_twin(voiced: str, plain: str, frame: VoiceFrame) -> bool:
    """Whether the voiced answer is its plain twin with at most the frame added around it
    (a greeting, the model's framing line after it, the sign-off)."""
    if plain not in voiced:
        return False
    head, tail = voiced.split(plain, 1)
    head_ok = not head or (frame.opens(head) and head.endswith("\n\n"))
    tail_ok = not tail or tail == "\n\n" + frame.sign_off
    return head_ok and tail_ok


def _model_line(voiced: str, plain: str, frame: VoiceFrame) -> bool:
    head = voiced.split(plain, 1)[0] if plain in voiced else ""
    return bool(head) and not any(head == greeting + "\n\n" for greeting in frame.greetings)
