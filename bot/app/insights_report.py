"""Insights as a picture and as a page: one PNG chart (matplotlib, off-screen) and one
self-contained HTML file (the chart inlined as a data URI, the styles inline, no outside
asset), for an admin to open in a browser or attach to a digest."""

from __future__ import annotations

import base64
import html
import io
import textwrap
from datetime import datetime

from bot.insights import Insights

_FIGURES = [  # (key in Insights.changes(), label, kind)
    ("questions", "Questions", "count"), ("answer_rate", "Answered", "rate"),
    ("abstention_rate", "Abstained", "rate"), ("thumbs_up", "Thumbs up", "count"),
    ("thumbs_down", "Thumbs down", "count"), ("thumbs_up_rate", "Thumbs up, share of ratings", "rate"),
    ("escalations", "Asked for a person", "count"),
    ("median_answer_ms", "Median answer time", "ms"),
]


def chart_png(insights: Insights, dpi: int = 110) -> bytes:
    """Left: questions per day, answered and not, with 👎. Right: the top coverage gaps."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    fig, (trend, gaps) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    try:
        days = insights.days
        labels = [d.day[5:] for d in days]
        answered = [d.answered for d in days]
        unanswered = [d.questions - d.answered for d in days]
        trend.bar(labels, answered, color="#3a7d44", label="answered")
        trend.bar(labels, unanswered, bottom=answered, color="#d1495b", label="not answered")
        if any(d.thumbs_down for d in days):
            trend.plot(labels, [d.thumbs_down for d in days], color="#222222", marker="o", label="thumbs down")
        c = insights.current
        rate = f"{c.answer_rate:.0%} answered" if c.answer_rate is not None else "no questions"
        trend.set_title(f"Questions per day: {c.questions}, {rate}")
        trend.legend(loc="upper left", fontsize=8)
        step = max(1, len(labels) // 14)  # a long period: every few days labelled, not a smear
        trend.set_xticks(range(0, len(labels), step), labels[::step])
        trend.tick_params(axis="x", labelrotation=45, labelsize=8)
        if not days:
            trend.text(0.5, 0.5, "no questions in this period", ha="center", va="center", transform=trend.transAxes)
        top = insights.gaps[:8][::-1]
        gaps.barh([textwrap.shorten(g.name, 48, placeholder="…") for g in top], [g.questions for g in top],
                  color="#edae49")
        for y, gap in enumerate(top):
            gaps.text(gap.questions, y, f" {gap.questions}", va="center", fontsize=8)
        gaps.set_title("Top coverage gaps (questions per topic)")
        gaps.xaxis.get_major_locator().set_params(integer=True)
        trend.yaxis.get_major_locator().set_params(integer=True)
        gaps.tick_params(axis="y", labelsize=8)
        if not top:
            gaps.text(0.5, 0.5, "no coverage gaps", ha="center", va="center", transform=gaps.transAxes)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=dpi)
        return out.getvalue()
    finally:
        plt.close(fig)


def report_html(insights: Insights, png: bytes | None = None) -> str:
    """One page: the figures with their change, the chart, the gaps, the 👎 pages."""
    esc = html.escape
    data = insights.to_json()
    rows = []
    for key, label, kind in _FIGURES:
        figure = data["figures"][key]
        rows.append(f"<tr><th>{esc(label)}</th><td class=value>{_shown(figure['value'], kind)}</td>"
                    f"<td>{_shown(figure['previous'], kind)}</td><td>{_change(figure['change'], kind)}</td></tr>")
    gap_rows = []
    for n, gap in enumerate(insights.gaps, 1):
        page = gap.closest_page
        closest = (f"<a href=\"{esc(page.url)}\">{esc(page.title)}</a>" if page and page.url
                   else esc(page.title) if page else "–")
        if page:
            closest += f" <small>{esc(page.source)}, score {page.score:.2f}</small>"
        examples = "".join(f"<li>{esc(e)}</li>" for e in gap.examples)
        gap_rows.append(f"<tr><td>{n}</td><td><b>{esc(gap.name)}</b><ul>{examples}</ul></td><td>{gap.questions}</td>"
                        f"<td>{gap.unanswered}</td><td>{gap.thumbs_down}</td><td>{gap.escalated}</td>"
                        f"<td>{closest}</td></tr>")
    page_rows = [f"<tr><td>{esc(p.title)} <small>{esc(p.source)}</small></td><td>{p.thumbs_down}</td>"
                 f"<td>{p.answers}</td><td><ul>{''.join(f'<li>{esc(c)}</li>' for c in p.comments)}</ul></td></tr>"
                 for p in insights.down_rated_pages]
    chart = (f"<img alt=\"Questions per day and top coverage gaps\" src=\"data:image/png;base64,"
             f"{base64.b64encode(png).decode()}\">" if png else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supportbot insights</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ padding: .35em .8em; border-bottom: 1px solid #ddd;
text-align: left; vertical-align: top; }} td.value {{ font-weight: bold; }} ul {{ margin: .2em 0; }}
small {{ color: #666; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>What the docs did not answer</h1>
<p>From {_when(insights.start)} to {_when(insights.end)}, compared with the same length of time before.</p>
<h2>Figures</h2>
<table id="figures"><tr><th></th><th>This period</th><th>Previous</th><th>Change</th></tr>{''.join(rows)}</table>
{chart}
<h2>Top coverage gaps</h2>
{f'<table id="gaps"><tr><th>#</th><th>Topic and examples</th><th>Questions</th><th>Unanswered</th><th>Thumbs down</th><th>Asked for a person</th><th>Closest page</th></tr>{"".join(gap_rows)}</table>' if gap_rows else '<p>None: every question was answered without a thumbs down or a call for a person.</p>'}
<h2>Pages with the most thumbs down</h2>
{f'<table id="pages"><tr><th>Page</th><th>Thumbs down</th><th>Answers rated down</th><th>What was wrong</th></tr>{"".join(page_rows)}</table>' if page_rows else '<p>No thumbs down in this period.</p>'}
</body></html>
"""


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _shown(value: float | int | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value:.0%}"
    if kind == "ms":
        return f"{value / 1000:.2f} s"
    return str(value)


def _change(change: float | int | None, kind: str) -> str:
    if change is None:
        return "–"
    if kind == "rate":
        return f"{change * 100:+.0f} pts"
    if kind == "ms":
        return f"{change / 1000:+.2f} s"
    return f"{change:+d}"
