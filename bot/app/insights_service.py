"""Insights as the app serves them: the CLI report, the admins' `/supportbot insights` and
the scheduled digest, all from one computation over the feedback store, with the
embedder-backed grouping wired in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.feedback import FeedbackStore, FeedbackUnavailable, question_key
from bot.insights import Insights, InsightsError, build_insights, parse_since
from bot.notify import ChannelNotifier

if TYPE_CHECKING:
    from knowledge.embedding import Embedder

log = logging.getLogger(__name__)
CHART_FILE = "supportbot-insights.png"


class InsightsService:
    def __init__(self, store: FeedbackStore, embedder: Callable[[], Embedder],
                 clock: Callable[[], float] = time.time) -> None:
        from bot.app.coverage_gaps import MeaningGroups

        self.store = store
        self.groups = MeaningGroups(store, embedder)
        self._embedder = embedder
        self.clock = clock

    def report(self, since: str = "7d") -> Insights:
        """Insights from `since` ("7d", "24h", "2w" or a date) until now; InsightsError for a
        `since` that is not one."""
        now = self.clock()
        return build_insights(self.store, self.groups, parse_since(since, now), now)

    def summary(self, since: str) -> str:
        """The chat command's reply."""
        return self.report(since or "7d").summary()

    def remember_question(self, text: str) -> None:
        """At answer time: keep the question's vector (the retrieval just computed it, so it
        comes from the embedder's cache), so a report need not load the model to group the
        questions that were not answered, or that are rated 👎 or escalated later."""
        if not text.strip():
            return
        try:
            embedder = self._embedder()
            self.groups.remember(question_key(text), embedder.embed_query(text), embedder.model_id)
        except FeedbackUnavailable as err:  # the store has said so once for the outage
            log.debug("question vector not kept: %s", err)
        except Exception as err:  # never at the cost of the answer
            log.warning("question vector not kept: %s", err)


class WeeklyDigest:
    """The scheduled job: apply retention, then post the summary (and the chart, where the
    platform takes files) to the admins' channel."""

    def __init__(self, service: InsightsService, notifier: ChannelNotifier, channel: str | None, days: int) -> None:
        self.service = service
        self.notifier = notifier
        self.channel = channel
        self.days = days

    def run(self) -> str | None:
        """Returns the text posted (None when nothing could be)."""
        from bot.app.insights_report import chart_png

        try:
            self.service.store.forget_expired()
            insights = self.service.report(f"{self.days}d")
            text = insights.summary()
            if not self.channel:
                log.warning("digest not posted: set insights.digest_channel or reindex.admin_channel\n%s", text)
                return None
            self.notifier.post(self.channel, text, attachment=(CHART_FILE, chart_png(insights)))
            return text
        except (InsightsError, RuntimeError, OSError) as err:  # the store or the disk: said in one line
            log.error("weekly digest not posted: %s", err)
        except Exception:  # e.g. the platform refused the post; the schedule goes on
            log.exception("weekly digest not posted")
        return None
