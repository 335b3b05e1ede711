"""Batched generation with the real bundled model: questions asked together are decoded in
one batch, each gets exactly what it would have got alone (fp32, greedy), each row ends on
its own limit, and an asker who stops reading stops its row."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from adapters_lora.batching import BatchScheduler, GenerationRequest
from adapters_lora.generator import GenerationSettings, TransformersGenerator, common_prefix_length, reading_groups
from bot.types import ChatMessage
from tests.helpers import generate_together

PROMPTS = ("What is the capital of France?", "Say hello.", "List three colours.", "What's 2+2?")


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@pytest.fixture(scope="module")
def fp32(model_cache: Path) -> TransformersGenerator:
    return TransformersGenerator("bundled", model_cache, GenerationSettings(weights="fp32", max_new_tokens=16))


def test_questions_asked_together_are_one_batch_with_the_answers_they_get_alone(fp32) -> None:
    alone = [fp32.generate(ask(p)) for p in PROMPTS]
    rounds_before = fp32.batches.rounds
    assert generate_together(fp32, PROMPTS) == alone
    assert alone[0] == "The capital of France is Paris."
    assert fp32.batches.rounds - rounds_before < len(PROMPTS) and fp32.batches.largest_batch >= 2
    assert fp32.prefix_reuses >= 2  # the system prompt and template were read once, not per question


def test_each_row_ends_on_its_own_limit_and_a_closed_stream_stops_its_row(fp32) -> None:
    short = GenerationRequest(fp32.prompt_tokens(ask("List three colours.")), 3, None)
    long = GenerationRequest(fp32.prompt_tokens(ask("Write a poem about the sea.")), 16, None)
    dropped = GenerationRequest(fp32.prompt_tokens(ask("Tell me a long story.")), 16, None)
    dropped.cancel()  # its asker went away before it ran
    fp32._run_round([short, long, dropped])
    assert len(short.tokens) == 3 and len(long.tokens) == 16 and dropped.tokens == []
    assert "".join(short.pieces()) == fp32._tokenizer.decode(short.tokens, skip_special_tokens=True)

    stream = fp32.stream(ask("Tell me a long story about a dragon."), max_new_tokens=16)
    first = next(stream)
    stream.close()  # the asker read one piece and stopped
    assert first and fp32.generate(ask("Say hello."), max_new_tokens=4)  # the model is free again


def test_a_question_asked_while_a_round_runs_joins_it_and_gets_what_it_gets_alone(fp32) -> None:
    long, late = ask("Write a poem about the sea."), ask("What is the capital of France?")
    alone = [fp32.generate(long), fp32.generate(late, max_new_tokens=8)]
    rounds, joined = fp32.batches.rounds, fp32.batches.joined
    first = fp32.stream(long)
    pieces = [next(first)]  # the round is under way
    second = fp32.generate(late, max_new_tokens=8)
    assert fp32.batches.rounds == rounds + 1 and fp32.batches.joined == joined + 1  # joined, no round of its own
    assert "".join(pieces + list(first)).strip() == alone[0] and second == alone[1] == "The capital of France is Paris."


def test_a_page_quoted_to_several_askers_is_read_once_for_the_round(fp32) -> None:
    page = ("Read the documentation and answer the question.\n\n[1] Sharing: open the folder, choose Share, "
            "type your teammates' email addresses and pick Can edit or Can view. A shared folder can have up to "
            "1,000 members.\n\n### Question\n")
    prompts = [page + q for q in ("How do I share a folder?", "How many members can a folder have?", "Who can edit?")]
    alone = [fp32.generate(ask(p)) for p in prompts]
    tokens = [fp32.prompt_tokens(ask(p)) for p in prompts]
    with fp32._run_lock, torch.inference_mode():
        openings = fp32._openings(fp32._switch.model, None, tokens)
    shared = common_prefix_length(tokens)
    assert shared > len(fp32.prompt_tokens(ask(""))) + 40  # the page too
    assert all(shared <= length < len(t) and cache.get_seq_length() == length and cache.layers[0].keys.shape[0] == 1
               for (length, cache), t in zip(openings, tokens))  # each row after the page, with its own rest
    assert len({id(cache) for _, cache in openings}) == len({length for length, _ in openings})  # each read once
    assert generate_together(fp32, prompts) == alone  # read once, answered as alone
    with fp32._run_lock, torch.inference_mode():  # a round's own opening that was kept before is handed out as a copy
        kept = fp32._prefix_cache(fp32._switch.model, None, tokens[0][:40], store=True)
        fp32._prefix_cache(fp32._switch.model, None, tokens[0][:40], store=False).batch_repeat_interleave(3)
    assert kept.layers[0].keys.shape[0] == 1


def test_prompts_quoting_two_pages_are_each_read_after_their_own_page(fp32) -> None:
    pages = ("Read the documentation and answer the question.\n\n[1] Trash: deleted files stay in the trash for 30 "
             "days. Open Trash, select the file and click Restore.\n\n### Question\n",
             "Read the documentation and answer the question.\n\n[1] Invoices: every invoice is emailed to the billing "
             "contact and listed under Billing > Invoices, where it can be downloaded as a PDF.\n\n### Question\n")
    prompts = [page + q for page in pages for q in ("Where is it?", "How long does it take?")]
    alone = [fp32.generate(ask(p)) for p in prompts]
    tokens = [fp32.prompt_tokens(ask(p)) for p in prompts]
    with fp32._run_lock, torch.inference_mode():
        openings = fp32._openings(fp32._switch.model, None, tokens)
    for first, second in ((0, 1), (2, 3)):  # each pair after its own page, read once for both
        assert openings[first][1] is openings[second][1]
        assert openings[first][0] >= common_prefix_length([tokens[first], tokens[second]]) > common_prefix_length(tokens) + 20
    assert openings[0][1] is not openings[2][1]
    assert generate_together(fp32, prompts) == alone


def test_a_long_rest_is_read_in_a_call_of_its_own_and_every_row_answers_as_alone(fp32) -> None:
    page = ("Read the documentation and answer the question.\n\n[1] Exports: open Reports, pick a date range and "
            "click Export; the file arrives by email within ten minutes.\n\n### Question\n")
    long = "Summarize this, please: " + "the export of every report of every team, all year long; " * 8
    prompts = [page + "Where is it?", page + "How long does it take?", page + long]
    alone = [fp32.generate(ask(p)) for p in prompts[2:] + prompts[:2]]
    alone = alone[1:] + alone[:1]
    tokens = [fp32.prompt_tokens(ask(p)) for p in prompts]
    requests = [GenerationRequest(t, 16, None) for t in tokens]
    fp32._prefixes.clear()  # asked before, the long prompt would read only its last token after its own opening
    with fp32._run_lock, torch.inference_mode():
        groups = fp32._prefill(fp32._switch.model, None, requests, fp32._tokenizer.eos_token_id)
    assert [places for places, *_ in groups] == [[2], [0, 1]]  # the short rests are not padded to the long one's
    assert [mask.shape[1] for _, _, mask, _, _ in groups] == [len(tokens[2]), max(len(tokens[0]), len(tokens[1]))]
    assert generate_together(fp32, prompts) == alone


def test_rows_are_read_together_while_the_padding_is_no_longer_than_themselves() -> None:
    assert reading_groups([20, 20, 116, 20]) == [[2], [0, 1, 3]]  # a burst's one long rest: a call of its own
    assert reading_groups([6, 20]) == [[0, 1]]  # 14 padding tokens: cheaper than a call
    assert reading_groups([40, 4, 30, 20]) == [[0, 2, 3], [1]]
    assert reading_groups([5]) == [[0]] and reading_groups([]) == []
    # a call reads at most 2,048 tokens (rows x the longest), unless one row alone is longer
    assert reading_groups([1000, 1000, 1000]) == [[0, 1], [2]]
    assert reading_groups([1900] * 3) == [[0], [1], [2]] and reading_groups([3000, 20]) == [[0], [1]]
    assert reading_groups([20] * 30) == [list(range(30))]  # a burst's lead-ins: one call


def test_a_batch_takes_rows_while_rows_times_the_longest_fit_its_token_budget() -> None:
    rounds: list[list[int]] = []
    gate = threading.Event()

    def run_round(batch: list[GenerationRequest], join) -> None:
        gate.wait(10)
        rounds.append([len(r.prompt) for r in batch] + [len(r.prompt) for r in join(8 - len(batch))])

    scheduler = BatchScheduler(run_round, max_batch=8, max_batch_tokens=1000)
    long, short = [GenerationRequest([1] * 400, 100, None) for _ in range(3)], [GenerationRequest([1] * 90, 10, None)
                                                                                for _ in range(12)]
    scheduler.submit(long[0])
    time.sleep(0.2)  # the first round is under way, waiting at the gate
    for request in long[1:] + short:
        scheduler.submit(request)
    gate.set()
    for request in long + short:
        assert list(request.pieces()) == []
    scheduler.close()
    # rows x the longest: two 500-token rows fit 1,000, three do not, and a 100-token row beside a
    # 500-token one counts 500; eight 100-token rows fit, and max_batch stops there
    assert rounds == [[400, 400], [400, 90], [90] * 8, [90] * 3]


def test_the_shared_opening_stops_where_any_prompt_differs_or_ends() -> None:
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 7]]) == 2
    # an earlier prompt shorter than this round's: the rows' own difference past its end still counts
    assert common_prefix_length([[1, 2, 3, 4, 5], [1, 9, 3, 4, 6], [1]]) == 1
    assert common_prefix_length([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6], [1, 2]]) == 2
    assert common_prefix_length([[5, 6], [5, 6]]) == 2


def test_a_round_takes_one_voice_and_the_others_wait_for_theirs() -> None:
    rounds: list[list[str | None]] = []
    gate = threading.Event()

    def run_round(batch: list[GenerationRequest], join) -> None:
        gate.wait(10)
        rounds.append([r.voice for r in batch] + [r.voice for r in join(2)])  # another voice waits: no one joins

    scheduler = BatchScheduler(run_round, max_batch=2)
    requests = [GenerationRequest([1], 1, voice) for voice in ("crew", "formal", "crew", "crew", None)]
    for request in requests:
        scheduler.submit(request)
    gate.set()
    for request in requests:
        assert list(request.pieces()) == []
    # the first round takes "crew" (alone, or with the next crew if it was queued in time); then the
    # oldest request's voice goes first each round, with up to max_batch of that voice
    assert rounds in ([["crew"], ["formal"], ["crew", "crew"], [None]],
                      [["crew", "crew"], ["formal"], ["crew"], [None]])
    scheduler.close()


def test_a_failed_round_is_counted_and_each_of_its_askers_hears_why() -> None:
    def run_round(batch: list[GenerationRequest], join) -> None:
        raise RuntimeError("the model could not be read")

    scheduler = BatchScheduler(run_round, max_batch=4)
    request = GenerationRequest([1], 1, None)
    scheduler.submit(request)
    with pytest.raises(RuntimeError, match="the model could not be read"):
        list(request.pieces())
    scheduler.close()
    assert scheduler.failed_rounds == 1 and scheduler.rounds == 1


def test_memory_is_handed_back_after_a_round_only_when_nothing_waits() -> None:
    gate, rounds, idle = threading.Event(), [], []

    def run_round(batch: list[GenerationRequest], join) -> None:
        gate.wait(10)
        rounds.append([r.voice for r in batch])

    scheduler = BatchScheduler(run_round, max_batch=4, on_idle=lambda: idle.append(len(rounds)))
    first, other = GenerationRequest([1], 1, "crew"), GenerationRequest([1], 1, "formal")
    scheduler.submit(first)
    time.sleep(0.2)  # the first round is under way, waiting at the gate
    scheduler.submit(other)  # another voice: it waits for a round of its own
    gate.set()
    for request in (first, other):
        assert list(request.pieces()) == []
    deadline = time.monotonic() + 5
    while not idle and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.close()
    assert rounds == [["crew"], ["formal"]]
    assert idle == [2]  # not after the first round (the other voice waited), once after the second


def test_an_idle_hook_that_fails_does_not_stop_the_generator() -> None:
    def fail() -> None:
        raise OSError("no such allocator")

    scheduler = BatchScheduler(lambda batch, join: None, max_batch=2, on_idle=fail)
    for _ in range(2):
        request = GenerationRequest([1], 1, None)
        scheduler.submit(request)
        assert list(request.pieces()) == []
        time.sleep(0.1)
    scheduler.close()
    assert scheduler.rounds == 2 and scheduler.failed_rounds == 0
