"""The answering service: retrieve -> prompt -> generate -> keep real citations -> Answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.composer import Composer
from bot.conversation import ConversationMemory
from bot.framing import FrameSource, Framer
from bot.generated_text import cited_numbers
from bot.grounding import is_noise, missing_identifiers
from bot.follow_ups import standalone_question
from bot.prompting import build_messages, render_context
from bot.protocols import BASE_VOICE, GenerationUnavailable, Generator, Passage, RetrievalUnavailable, Retriever
from bot.types import Answer, ChatMessage, Citation, Question, Turn
from bot.verified_stream import VerifiedStream

ABSTAIN_TEXT = "I couldn't find that in the docs."
INDEX_UNAVAILABLE_TEXT = ("I can't search the docs right now: the docs index needs repair. The admins have been told "
                          "in the bot's log; please try again later.")
UNAVAILABLE_TEXT = "I can't write an answer right now: the answer engine is not available. Please try again in a few minutes."
TokenCallback = Callable[[str], None]
COMPOSED, FREE = "composed", "free"
CONTEXT_CHARS = 6000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnsweringSettings:
    top_k: int = 3
    closest_pages: int = 3
    max_passage_chars: int = 1200
    max_question_chars: int = 2000  # keeps every prompt inside the generator's token budget
    channel_voices: tuple[tuple[str, str], ...] = ()  # (channel id, voice name); others use the active voice
    channel_sources: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (channel id, docs sources it answers from)
    mode: str = COMPOSED  # composed: facts quoted from passages, model frames; free: model writes, then verified
    frame: bool = True  # composed answers: the model (voice) writes a lead-in and sign-off
    close_ratio: float = 0.95  # once a question is in scope, a page retrieval scored this close to the best one is read too

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError("answering top_k must be >= 1")
        if self.mode not in (COMPOSED, FREE):
            raise ValueError(f"answering mode must be {COMPOSED!r} or {FREE!r}, not {self.mode!r}")


class AnswerService:
    def __init__(self, retriever: Retriever, generator: Generator, memory: ConversationMemory | None = None,
                 settings: AnsweringSettings | None = None,
                 indexed_at: Callable[[], str | None] | None = None,
                 active_voice: Callable[[], str | None] | None = None,
                 on_answered: Callable[[Question, Answer], None] | None = None,
                 composer: Composer | None = None, voice_frames: FrameSource | None = None) -> None:
        self.retriever = retriever
        self.composer = composer or Composer()
        self.framer = Framer(generator, voice_frames)  # voice_frames: each voice's frame, learned from its examples
        self.generator = generator
        self.memory = memory or ConversationMemory()
        self.settings = settings or AnsweringSettings()
        self.indexed_at = indexed_at  # set: every answer says how fresh its docs are
        self.active_voice = active_voice
        self.on_answered = on_answered  # e.g. metrics

    def retrieve(self, question: Question, history: Sequence[Turn] | None = None) -> list[Passage]:
        """Top passages for the question as the conversation reads it: a follow-up ("and on
        a Mac?") is searched as the whole question it stands for."""
        if history is None:
            history = self.history(question)
        return self._search(self.standalone(question.text, history), question)

    def _search(self, asked: str, question: Question) -> list[Passage]:
        return list(self.retriever.search(asked, k=self.settings.top_k, collections=self.scope(question)))

    def history(self, question: Question) -> list[Turn]:
        """The conversation so far: remembered turns, else the earlier questions the caller
        sent along (each read whole in turn; their answers were not shown here)."""
        remembered = self.memory.history(question.conversation_id)
        if remembered or not question.follows:
            return remembered
        turns: list[Turn] = []
        for earlier in question.follows:
            turns.append(Turn(question=self.standalone(earlier, turns), answer=""))
        return turns

    def standalone(self, text: str, history: Sequence[Turn]) -> str:
        """The whole question a follow-up stands for (see bot.follow_ups); `text` itself when
        it stands alone. Earlier turns are remembered already read whole."""
        return standalone_question(text, [turn.question for turn in history], self.composer.similarity)

    def scope(self, question: Question) -> list[str] | None:
        """The docs sources a question may be answered from: its own, else its channel's."""
        if question.collections:
            return question.collections
        scoped = dict(self.settings.channel_sources).get(question.channel_id or "")
        return list(scoped) if scoped else None

    def answer(self, question: Question, on_token: TokenCallback | None = None) -> Answer:
        """Answer one question; `on_token` receives generated text as it streams."""
        answer = self._answer(question, on_token)
        if self.indexed_at is not None and answer.citations:
            answer = answer.model_copy(update={"indexed_at": self.indexed_at()})
        if self.on_answered is not None:
            self.on_answered(question, answer)
        return answer

    def _answer(self, question: Question, on_token: TokenCallback | None) -> Answer:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if not question.text.strip():
            return Answer(answer="Please ask a question.", abstained=True)
        if len(question.text) > self.settings.max_question_chars:
            return Answer(answer=f"That question is {len(question.text):,} characters long; please shorten it to "
                                 f"under {self.settings.max_question_chars:,} and ask again.", abstained=True)
        if is_noise(question.text):
            return Answer(answer=ABSTAIN_TEXT, abstained=True, timings_ms={"total": _ms(started)})
        history = self.history(question)
        asked = self.standalone(question.text, history)  # a follow-up, read with the question it follows
        try:
            passages = self._search(asked, question)
        except RetrievalUnavailable as err:
            log.error("retrieval unavailable: %s", err)
            return Answer(answer=INDEX_UNAVAILABLE_TEXT, abstained=True, timings_ms={"total": _ms(started)})
        timings["retrieve"] = _ms(started)
        relevant = [p for p in passages if p.relevant]
        if relevant:  # the gate says "in scope"; which pages to read is the ranking's call
            bar = self.settings.close_ratio * max(p.score for p in relevant)
            relevant = [p for p in passages if p.relevant or p.score >= bar]
        elif passages and self.composer.states_answer(asked, passages):
            relevant = list(passages)  # one sentence answers, though no page as a whole was close enough
        if not relevant:
            answer = self._abstain(passages)
            self._remember(question, asked, answer)  # a follow-up may still refer to what was asked
            timings["total"] = _ms(started)
            return answer.model_copy(update={"timings_ms": timings})

        voice, used_voice = self._voice(question)
        emit = on_token or (lambda _piece: None)
        try:
            if self.settings.mode == FREE:
                messages = build_messages(asked, relevant, history, self.settings.max_passage_chars)
                text, numbers = self._free(messages, relevant, voice, emit, timings)
            else:
                text, numbers = self._composed(asked, history, relevant, voice, used_voice, emit, timings)
        except GenerationUnavailable as err:
            log.error("generation unavailable: %s", err)
            citations = [_citation(n, p) for n, p in enumerate(relevant, 1)]
            pages = " Meanwhile, these pages look relevant: " + "; ".join(
                f"[{c.n}] {c.title}" for c in citations) + "." if citations else ""
            timings["total"] = _ms(started)
            return Answer(answer=UNAVAILABLE_TEXT + pages, abstained=True, citations=citations, timings_ms=timings)

        if not text:
            answer = self._abstain(passages)
        else:
            # markers keep the numbers they streamed with: what was shown is never renumbered
            cited = sorted(set(numbers))
            citations = [_citation(n, relevant[n - 1]) for n in cited]
            context = render_context(relevant[: max(cited)], CONTEXT_CHARS)  # numbered as the answer cites them
            answer = Answer(answer=text, abstained=False, citations=citations, voice=used_voice, context=context)
        self._remember(question, asked, answer)
        timings["total"] = _ms(started)
        return answer.model_copy(update={"timings_ms": timings})

    def _remember(self, question: Question, asked: str, answer: Answer) -> None:
        self.memory.remember(question.conversation_id,
                             Turn(question=asked, answer=answer.answer, sources=[c.source for c in answer.citations]))

    def _voice(self, question: Question) -> tuple[str | None, str | None]:
        """(what the generator is asked to speak with, the voice the answer is labelled with),
        resolved once per answer, so an activation in between cannot make the label and the
        writing disagree: the channel's voice, else the active one, else the base model."""
        channel = dict(self.settings.channel_voices).get(question.channel_id or "")
        if channel:
            return channel, channel
        if self.active_voice is None:
            return None, None  # no registry to ask: the generator's own default
        active = self.active_voice()
        return active or BASE_VOICE, active

    def _composed(self, question: str, history: Sequence[Turn], passages: Sequence[Passage], voice: str | None,
                  used_voice: str | None, emit: TokenCallback, timings: dict[str, float]) -> tuple[str, list[int]]:
        """Facts quoted from the passages; the model (in its voice) adds only the lead-in and
        the sign-off, each kept only if it states nothing. Streams lead-in, facts, sign-off."""
        t0 = time.perf_counter()
        composition = self.composer.compose(question, passages)
        timings["compose"] = _ms(t0)
        if composition is None:
            return "", []
        body = composition.body
        if composition.yes_no:
            body = f"{composition.yes_no}.\n\n{body}"
        texts = [p.text for p in passages]
        if any(missing_identifiers(piece, [texts[n - 1]]) for n, piece in composition.pieces):
            log.error("a composed piece failed verification against its passage; abstaining")  # a bug if ever seen
            return "", []
        lead = sign_off = ""
        t1 = time.perf_counter()
        if self.settings.frame and used_voice:  # the bare base model's lead-ins state facts: all dropped, 1-2 s each
            lead = self.framer.lead_in(question, body, history, voice, texts, voice_name=used_voice)
        if lead:
            emit(lead + "\n\n")
        emit(body)
        if self.settings.frame and used_voice:  # the base model has no sign-off of its own
            sign_off = self.framer.sign_off(used_voice, voice)
        if sign_off:
            emit("\n\n" + sign_off)
        timings["generate"] = _ms(t1)
        return "\n\n".join(part for part in (lead, body, sign_off) if part), composition.cited

    def _free(self, messages: list[ChatMessage], passages: Sequence[Passage], voice: str | None,
              emit: TokenCallback, timings: dict[str, float]) -> tuple[str, list[int]]:
        """The model writes the whole answer; only sentences its passages support get out."""
        t0 = time.perf_counter()
        verified = VerifiedStream([p.text for p in passages])
        for piece in self.generator.stream(messages, voice=voice):
            shown = verified.feed(piece)
            if shown:
                emit(shown)
        shown = verified.finish()
        if shown:
            emit(shown)
        if verified.dropped:
            log.info("dropped %d unsupported sentence(s) from a free answer", len(verified.dropped))
        timings["generate"] = _ms(t0)
        text, numbers = cited_numbers(verified.text, len(passages))
        return text, numbers

    def _abstain(self, passages: Sequence[Passage]) -> Answer:
        closest = list(passages)[: self.settings.closest_pages]
        citations = [_citation(n, p) for n, p in enumerate(closest, 1)]
        text = ABSTAIN_TEXT
        if citations:
            text += " The closest pages I have are: " + "; ".join(f"[{c.n}] {c.title}" for c in citations) + "."
        return Answer(answer=text, abstained=True, citations=citations)


def _citation(n: int, passage: Passage) -> Citation:
    return Citation(n=n, source=passage.source, title=passage.title, url=passage.url, score=float(passage.score))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
