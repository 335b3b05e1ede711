"""What the docs do not answer, from the questions the bot recorded: answer and abstention
rates, 👍/👎, escalations and answer time against the period before, the coverage gaps
(unanswered, 👎-rated and escalated questions grouped by meaning) and the pages with the
most 👎. One computation feeds `supportbot insights`, the weekly digest and the chat command.

Grouping by meaning needs vectors, which the core does not compute: it is handed a
`GroupByMeaning` (the composition root's embedder-backed one; tests may pass any).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from bot.feedback import AnswerFacts, FeedbackStore

# (questions, their keys) -> groups of indices into them, each with its most central first
GroupByMeaning = Callable[[list[str], list[str]], list[list[int]]]

_SPAN = re.compile(r"(\d+)\s*([hdw])")
_UNIT_S = {"h": 3600, "d": 86_400, "w": 7 * 86_400}
EXAMPLES_PER_GAP = 3


class InsightsError(ValueError):
    """A request insights cannot serve, said in one line (a bad --since)."""


def parse_since(text: str, now: float) -> float:
    """The start of the period: a span back from now ("7d", "24h", "2w") or a date
    ("2026-11-30", local time). Spans are three letters of grammar, so a regex; dates are
    the standard library's ISO parser."""
    value = text.strip().lower()
    span = _SPAN.fullmatch(value)
    if span and int(span.group(1)) > 0:
        start = now - int(span.group(1)) * _UNIT_S[span.group(2)]
        try:
            datetime.fromtimestamp(2 * start - now)  # the period before it must be a date too
        except (ValueError, OverflowError, OSError):
            raise InsightsError(f"--since {text!r}: that reaches back further than dates go") from None
        return start
    try:
        start = datetime.fromisoformat(value).timestamp()
    except ValueError:
        start = None
    if start is None or start >= now:
        raise InsightsError(f"--since {text!r}: use a span back from now (7d, 24h, 2w) or a past date (2026-11-30)")
    return start


@dataclass(frozen=True)
class PeriodFigures:
    questions: int = 0
    answered: int = 0
    abstained: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    escalations: int = 0
    median_answer_ms: float | None = None

    @classmethod
    def of(cls, facts: list[AnswerFacts]) -> PeriodFigures:
        times = [f.answer_ms for f in facts if f.answer_ms is not None]
        return cls(questions=len(facts), answered=sum(not f.abstained for f in facts),
                   abstained=sum(f.abstained for f in facts), thumbs_up=sum(f.thumbs_up for f in facts),
                   thumbs_down=sum(f.thumbs_down for f in facts), escalations=sum(f.escalations for f in facts),
                   median_answer_ms=round(statistics.median(times), 1) if times else None)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.questions if self.questions else None

    @property
    def abstention_rate(self) -> float | None:
        return self.abstained / self.questions if self.questions else None

    @property
    def thumbs_up_rate(self) -> float | None:
        """👍 among the ratings given."""
        rated = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / rated if rated else None

    def metrics(self) -> dict[str, float | int | None]:
        rate = self.thumbs_up_rate
        return {"questions": self.questions, "answer_rate": self.answer_rate, "abstention_rate": self.abstention_rate,
                "thumbs_up": self.thumbs_up, "thumbs_down": self.thumbs_down, "thumbs_up_rate": rate,
                "thumbs_down_rate": None if rate is None else 1 - rate, "escalations": self.escalations,
                "median_answer_ms": self.median_answer_ms}


@dataclass(frozen=True)
class Page:
    source: str
    title: str
    url: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Gap:
    """Questions on one topic the docs did not settle, named by its most central question."""

    name: str
    questions: int
    unanswered: int
    thumbs_down: int
    escalated: int
    examples: list[str]
    closest_page: Page | None


@dataclass(frozen=True)
class DownRatedPage:
    source: str
    title: str
    thumbs_down: int
    answers: int  # answers citing it that got a 👎
    comments: list[str] = field(default_factory=list)  # what raters said was wrong, latest first


@dataclass(frozen=True)
class Day:
    day: str  # YYYY-MM-DD, local time
    questions: int
    answered: int
    thumbs_down: int


@dataclass
class Insights:
    start: float
    end: float
    current: PeriodFigures
    previous: PeriodFigures
    gaps: list[Gap] = field(default_factory=list)
    down_rated_pages: list[DownRatedPage] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)

    def changes(self) -> dict[str, dict[str, float | int | None]]:
        """Each figure with the previous period's and the change (rates in fractions)."""
        now, before = self.current.metrics(), self.previous.metrics()
        return {name: {"value": value, "previous": before[name],
                       "change": None if value is None or before[name] is None else round(value - before[name], 4)}
                for name, value in now.items()}

    def to_json(self) -> dict:
        return {"since": _iso(self.start), "until": _iso(self.end), "previous_since": _iso(2 * self.start - self.end),
                "figures": self.changes(), "gaps": [asdict(g) for g in self.gaps],
                "down_rated_pages": [asdict(p) for p in self.down_rated_pages], "days": [asdict(d) for d in self.days]}

    def summary(self, gaps: int = 5) -> str:
        """The digest and the chat command's text."""
        c, p = self.current, self.previous
        days = round((self.end - self.start) / 86_400)
        heading = "This week" if days == 7 else f"Since {_iso(self.start)[:10]}" if days > 1 else "Last 24 hours"
        lines = [f"{heading}: {c.questions} questions, {_pct(c.answer_rate)} answered"
                 f"{_delta_pts(c.answer_rate, p.answer_rate)}, 👍 {c.thumbs_up} / 👎 {c.thumbs_down}, "
                 f"{c.escalations} asked for a person, median answer {_secs(c.median_answer_ms)}."]
        lines.append(f"Previous period: {p.questions} questions, {_pct(p.answer_rate)} answered, "
                     f"👍 {p.thumbs_up} / 👎 {p.thumbs_down}, {p.escalations} asked for a person.")
        if self.gaps:
            lines.append("Top gaps:")
            for n, gap in enumerate(self.gaps[:gaps], 1):
                example = next((e for e in gap.examples if e != gap.name), None)
                closest = f"; closest page: {gap.closest_page.source}" if gap.closest_page else ""
                lines.append(f"{n}. {gap.name} ({gap.questions} question{'s' if gap.questions != 1 else ''}"
                             f"{', e.g. “' + example + '”' if example else ''}{closest})")
        else:
            lines.append("No coverage gaps: every question was answered without a 👎 or a call for a person.")
        if self.down_rated_pages:
            lines.append("Most 👎: " + ", ".join(
                f"{p.source} ({p.thumbs_down}{', “' + p.comments[0] + '”' if p.comments else ''})"
                for p in self.down_rated_pages[:3]))
        return "\n".join(lines)


def build_insights(store: FeedbackStore, group: GroupByMeaning, start: float, end: float,
                   top_gaps: int = 10, top_pages: int = 5) -> Insights:
    """Insights for [start, end), compared with the period of the same length before it."""
    facts = store.answers_between(start, end)
    previous = store.answers_between(2 * start - end, start)
    pages = down_rated_pages(facts, store.comments_between(start, end))[:top_pages]
    return Insights(start, end, PeriodFigures.of(facts), PeriodFigures.of(previous),
                    coverage_gaps(facts, group)[:top_gaps], pages,
                    by_day(facts, start, end))


def coverage_gaps(facts: list[AnswerFacts], group: GroupByMeaning) -> list[Gap]:
    """Unanswered, 👎-rated and escalated questions grouped by meaning, largest group first."""
    gaps = [f for f in facts if f.abstained or f.thumbs_down or f.escalations]
    by_key: dict[str, list[AnswerFacts]] = defaultdict(list)
    for fact in gaps:
        by_key[fact.question_key].append(fact)
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), by_key[k][0].question))
    if not keys:
        return []
    texts = [by_key[k][0].question for k in keys]
    found = []
    for members in group(texts, keys):
        asked = [f for i in members for f in by_key[keys[i]]]
        by_count = sorted(members[1:], key=lambda i: -len(by_key[keys[i]]))
        found.append(Gap(name=texts[members[0]], questions=len(asked), unanswered=sum(f.abstained for f in asked),
                         thumbs_down=sum(bool(f.thumbs_down) for f in asked),
                         escalated=sum(bool(f.escalations) for f in asked),
                         examples=[texts[i] for i in [members[0], *by_count][:EXAMPLES_PER_GAP]],
                         closest_page=_closest_page(asked)))
    return sorted(found, key=lambda g: (-g.questions, g.name))


def _closest_page(asked: list[AnswerFacts]) -> Page | None:
    """The page the group's questions landed on first most often (best score breaks ties)."""
    firsts: Counter[str] = Counter()
    best: dict[str, dict] = {}
    for fact in asked:
        sources = sorted(fact.sources, key=lambda s: s.get("n", 0))
        if sources:
            top = sources[0]
            firsts[top["source"]] += 1
            if top["source"] not in best or top.get("score", 0) > best[top["source"]].get("score", 0):
                best[top["source"]] = top
    if not firsts:
        return None
    source = max(firsts, key=lambda s: (firsts[s], best[s].get("score", 0)))
    page = best[source]
    return Page(source, page.get("title", source), page.get("url"), round(float(page.get("score", 0)), 3))


def down_rated_pages(facts: list[AnswerFacts], comments: dict[str, list[str]] | None = None,
                     kept: int = EXAMPLES_PER_GAP) -> list[DownRatedPage]:
    """Pages cited by answers rated 👎, most 👎 first, with what raters said was wrong."""
    downs: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    titles: dict[str, str] = {}
    said: dict[str, list[str]] = defaultdict(list)
    for fact in facts:
        if not fact.thumbs_down:
            continue
        for source in {s["source"]: s for s in fact.sources}.values():
            downs[source["source"]] += fact.thumbs_down
            answers[source["source"]] += 1
            titles[source["source"]] = source.get("title", source["source"])
            said[source["source"]] += (comments or {}).get(fact.id, [])
    return [DownRatedPage(s, titles[s], downs[s], answers[s], said[s][::-1][:kept])
            for s in sorted(downs, key=lambda s: (-downs[s], s))]


def by_day(facts: list[AnswerFacts], start: float, end: float) -> list[Day]:
    """Every local day of the period, quiet days included (a trend shows them as zero)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for fact in facts:
        day = counts[datetime.fromtimestamp(fact.created_at).strftime("%Y-%m-%d")]
        day[0] += 1
        day[1] += not fact.abstained
        day[2] += fact.thumbs_down
    first = datetime.fromtimestamp(start).date()
    last = datetime.fromtimestamp(max(start, end - 1)).date()
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return [Day(d, *counts.get(d, [0, 0, 0])) for d in days]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def _delta_pts(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    points = round((now - before) * 100)
    return f" ({points:+d} pts)" if points else " (no change)"


def _secs(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.1f} s"
