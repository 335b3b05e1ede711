"""/healthz and /metrics as served beside the Slack endpoint, after real traffic."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from adapters.slack import blocks as kit
from bot.app.config import load_settings
from bot.http_endpoints import ops_app
from bot.work_queue import WorkQueue
from bot.app.application import App
from tests.slack_mock import FORM, SlackWorld, action_body, send


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_and_metrics_report_real_traffic(core: App) -> None:
    with SlackWorld(core, WorkQueue()) as slack:
        status, content_type, body = get(slack.served.base + "/healthz")
        assert status == 200 and content_type == "application/json"
        health = json.loads(body)
        assert health["status"] == "ok" and health["index_version"] == core.knowledge.store.live().seq
        assert health["queue_depth"] == 0
        before = samples(get(slack.served.base + "/metrics")[2])

        slack.mention("How do I get a refund?", ts="1700000002.000001")
        final = slack.api.wait_for(lambda calls: len(slack.finals()) == 1) and slack.finals()[0].body
        up = [e for b in final["blocks"] if b["type"] == "actions" for e in b["elements"]
              if e["action_id"] == kit.UP][0]["value"]
        send(slack.served.url, action_body(kit.UP, up, "UALICE", slack.api.response_url("up")), FORM)
        slack.api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))
        slack.command("/supportbot", "reindex", "UADMIN", "reindex")
        slack.api.wait_for(lambda calls: any(c.method == "response_url" and c.body["text"].startswith("Index v")
                                             for c in calls))

        status, content_type, text = get(slack.served.base + "/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=")
        after = samples(text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("supportbot_questions_total", platform="slack") == 1
    assert delta("supportbot_answer_seconds_count", platform="slack") == 1
    assert delta("supportbot_feedback_total", rating="up") == 1
    assert delta("supportbot_reindex_runs_total", trigger="chat", outcome="unchanged") == 1
    assert delta("supportbot_reindex_seconds_count") == 1
    assert after[("supportbot_queue_depth", ())] == 0
    assert after[("supportbot_index_version", ())] == core.knowledge.store.live().seq
    assert delta("supportbot_abstentions_total", platform="slack") == int(core.feedback.get(up).abstained)


def test_health_is_503_without_an_index(tmp_path: Path) -> None:
    app = App(load_settings(None, data_dir=tmp_path))
    sent: list[dict] = []

    async def call(path: str) -> None:
        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def record(message: dict) -> None:
            sent.append(message)

        await ops_app(app.health, app.metrics.exposition)({"type": "http", "path": path}, receive, record)

    asyncio.run(call("/healthz"))
    assert sent[0]["status"] == 503 and json.loads(sent[1]["body"])["status"] == "no index"
    asyncio.run(call("/nope"))
    assert sent[2]["status"] == 404
