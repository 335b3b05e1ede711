"""bench_retrieval's paired comparison: the counts and interval printed beside a baseline."""

from __future__ import annotations

from tests.benchmarks.bench_retrieval import paired_comparison


def test_a_single_question_one_place_lower_is_counted_and_its_interval_spans_no_change() -> None:
    expected = [{"a.html"}] * 25
    theirs = [["a.html", "b.html"]] * 25
    ours = [["b.html", "a.html"]] + [["a.html", "b.html"]] * 24
    line = paired_comparison(ours, theirs, expected, list(range(25)))
    # one question from rank 1 to 2: reciprocal rank -0.5, over 25 questions -0.02
    assert line.startswith("vs baseline, 25 questions: 0 ranked higher, 1 lower; MRR@10 -0.020, 95% interval [")
    low, high = (float(x) for x in line.split("[")[1].rstrip("]").split(", "))
    assert low == -0.06 and high == 0.0  # resampled, the one question may be drawn 3 times or not at all


def test_every_question_ranked_higher_is_a_clear_gain() -> None:
    expected = [{"a.html"}] * 10
    ours = [["a.html"]] * 10
    theirs = [["x.html", "y.html", "a.html"]] * 10  # rank 3 -> 1: +0.667 each
    line = paired_comparison(ours, theirs, expected, list(range(10)))
    assert line == ("vs baseline, 10 questions: 10 ranked higher, 0 lower; "
                    "MRR@10 +0.667, 95% interval [+0.667, +0.667]")


def test_only_the_half_asked_for_is_compared_and_a_miss_counts_as_zero() -> None:
    expected = [{"a.html"}, {"a.html"}]
    ours = [["a.html"], ["x.html"]]
    theirs = [["x.html"], ["a.html"]]
    assert paired_comparison(ours, theirs, expected, [1]).startswith(
        "vs baseline, 1 question: 0 ranked higher, 1 lower; MRR@10 -1.000")
    assert paired_comparison(ours, theirs, expected, []) == "no questions"
