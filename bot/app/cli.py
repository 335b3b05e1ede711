"""`supportbot` command line: index, ask, chat, eval, status."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from bot.app.cli_context import Context
from bot.app.cli_voice import voice
from bot.app.config import load_settings
from bot.protocols import RetrievalUnavailable, disk_fault
from bot.rendering import plain_sources
from bot.state_db import StateDatabaseError

EXIT_USAGE = 2
EXIT_GATE_REJECTED = 3


_UNITS = {"scanned": "files", "fetched": "pages", "embedded": "chunks", "written": "rows", "pulled": "repos",
          "evaluated": "checks"}


def _progress_printer(quiet: bool):
    """Render re-index progress as tqdm bars on stderr (one per stage)."""
    if quiet:
        return None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    closed: set[str] = set()

    def progress(stage: str, done: int, total: int) -> None:
        if stage in closed:
            if done:
                return  # a late repeat of a finished bar
            closed.discard(stage)  # the stage starts again (a second website's pages): a new bar
            del bars[stage]
        bar = bars.get(stage)
        if bar is None:  # stages announce themselves at 0, so the rate counts from the real start
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>9}", unit=f" {_UNITS.get(stage, 'items')}",
                                     file=sys.stderr, leave=True, dynamic_ncols=True)
        bar.total = total
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()
            closed.add(stage)

    return progress




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file (default: $SUPPORTBOT_CONFIG or ./supportbot.toml).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the index, model cache and adapters live ($SUPPORTBOT_DATA_DIR).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, data_dir: Path | None, verbose: int) -> None:
    """A self-hosted support bot that answers from your docs, with citations."""
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Library chatter (Lance's Rust log, pypdf's repairs) only at -vv; the user's output and
    # our own one-line messages stay readable, and --json output stays the only stdout.
    if verbose < 2:
        os.environ.setdefault("LANCEDB_LOG", "error")
        os.environ.setdefault("LANCE_LOG", "error")
        logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        settings = load_settings(config_file, data_dir=data_dir)
    except Exception as err:  # a bad config file is a usage error, not a crash
        raise click.ClickException(f"invalid configuration: {err}") from None
    if not settings.serve.log_chat_content:  # the libraries log message bodies at INFO/DEBUG
        for name in ("slack_bolt", "slack_sdk", "discord.http", "discord.gateway", "discord.webhook"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    from bot import log_redaction
    from bot.app.config import SECRET_FIELDS

    log_redaction.install(getattr(settings, f).get_secret_value() for f in SECRET_FIELDS if getattr(settings, f))
    ctx.obj = Context(settings)


def _ensure_index(app, quiet: bool) -> None:
    from bot.reindex_lock import AlreadyRunning

    if not app.index_ops.has_index():
        roots = ", ".join(str(r.path) for r in app.knowledge.docs_roots())
        click.echo(f"No index yet: indexing {roots} first.", err=True)
        try:
            report = app.index_ops.index(progress=_progress_printer(quiet))
        except AlreadyRunning as busy:
            raise click.ClickException(f"No index yet. {busy}") from None
        click.echo(report.summary(), err=True)


@cli.group(invoke_without_command=True)
@click.option("--docs", "docs", multiple=True, type=click.Path(path_type=Path),
              help="Docs folder to index (repeatable). Default: configured sources, else the last build's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index(ctx: click.Context, docs: tuple[Path, ...], as_json: bool) -> None:
    """Build or update the index (only changed documents are re-embedded).

    Exits 3 when the eval gate kept the previous version live.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bot.reindex_lock import AlreadyRunning

    user = os.environ.get("USER", "local")
    try:
        report = ctx.obj.app.index_ops.index(list(docs) or None, progress=_progress_printer(as_json), started_by=f"cli:{user}")
    except (FileNotFoundError, AlreadyRunning) as err:
        raise click.ClickException(str(err)) from None
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if report.rejected:
        ctx.exit(EXIT_GATE_REJECTED)


@index.command()
@click.argument("version", type=int, required=False)
@click.pass_obj
def rollback(obj: Context, version: int | None) -> None:
    """Make an earlier index VERSION live again (default: the one before the live one)."""
    from bot.protocols import RollbackRefused
    from bot.reindex_lock import AlreadyRunning

    try:
        outcome = obj.app.index_ops.rollback(version, started_by=f"cli:{os.environ.get('USER', 'local')}")
    except (AlreadyRunning, RollbackRefused) as err:
        raise click.ClickException(str(err)) from None
    click.echo(outcome.summary())


@index.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def versions(obj: Context, as_json: bool) -> None:
    """List index versions, newest first, and which can be rolled back to."""
    rows = obj.app.index_ops.index_versions()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No index yet.")
    for row in rows:
        state = "live" if row["live"] else (f"unavailable: {row['unavailable']}" if row["unavailable"]
                                            else "can roll back")
        origin = f" (= v{row['rollback_of']})" if row["rollback_of"] else ""
        click.echo(f"v{row['version']}{origin}  {row['built_at']}  {row['documents']} documents, "
                   f"{row['chunks']} chunks  [{state}]")


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see README).")
@click.option("--stream/--no-stream", default=True, help="Stream the answer as it is generated.")
@click.option("--after", "earlier", multiple=True, metavar="QUESTION",
              help="An earlier question of the same conversation (repeat it, oldest first): the question is "
                   "read as its follow-up, e.g. --after \"How do I install it on Windows?\" \"And on a Mac?\"")
@click.pass_obj
def ask(obj: Context, question: str, as_json: bool, stream: bool, earlier: tuple[str, ...]) -> None:
    """Answer one question from the docs."""
    from bot.types import Question

    app = obj.app
    _ensure_index(app, quiet=as_json)
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        streamed.append(piece)
        click.echo(piece, nl=False)

    reply = app.commands.ask(Question(text=question, user_id="cli", conversation_id="cli", platform="cli",
                                      follows=earlier),
                             on_token=on_token if stream and not as_json else None)
    if reply.answer is None:
        raise click.ClickException(reply.text)
    if as_json:
        click.echo(json.dumps(reply.answer.contract_json(), ensure_ascii=False))
        return
    if streamed:
        click.echo()
    else:
        click.echo(reply.answer.answer)
    sources = plain_sources(reply.answer)
    if sources:
        click.echo("\n" + sources)


@cli.command()
@click.pass_obj
def chat(obj: Context) -> None:
    """Console chat: questions, follow-ups, /reindex, /status, /help."""
    _ensure_index(obj.app, quiet=False)
    obj.app.run_console(user=os.environ.get("USER", "local"))


@cli.command(name="eval")
@click.option("--qa", "qa_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL of {question, answer, sources}.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-generate", is_flag=True, help="Retrieval and abstention only (fast).")
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.pass_obj
def evaluate(obj: Context, qa_file: Path, as_json: bool, no_generate: bool, limit: int | None) -> None:
    """Measure retrieval (hit@k, MRR, nDCG), abstention and latency on a QA file."""
    from bot.evaluation import QAFileError, evaluate as run_eval, load_qa

    try:
        items = load_qa(qa_file)[:limit]
    except QAFileError as err:
        raise click.ClickException(str(err)) from None
    app = obj.app
    if not app.index_ops.has_index():
        raise click.ClickException("no index yet: run `supportbot index --docs DIR` first")

    def on_item(done: int, total: int) -> None:
        if not as_json and (done % 10 == 0 or done == total):
            click.echo(f"  {done}/{total} questions", err=True)

    report = run_eval(app.answers, items, generate=not no_generate, on_item=on_item)
    if as_json:
        click.echo(json.dumps(report))
        return
    r = report["retrieval"]
    click.echo(f"Questions: {report['questions']}")
    click.echo("Retrieval: " + "  ".join(f"{k} {v:.3f}" for k, v in r.items()))
    click.echo(f"Abstained: {report['abstained']:.1%}")
    click.echo(f"Latency ms: p50 {report['latency_ms']['p50']}  p95 {report['latency_ms']['p95']}  "
               f"mean {report['mean_latency_ms']}" + ("" if report["generated"] else " (retrieval only)"))
    if "answers" in report:
        a = report["answers"]
        click.echo(f"Answers citing an expected source: {a['cited_expected_source']:.1%}")
        click.echo(f"Answers: mean {a['mean_words']} words, invented identifiers {a['invented_identifiers']:.1%}, "
                   f"garbled {a['garbled']:.1%}"
                   + (f", reference recall {a['recall']:.3f}" if a["recall"] is not None else "")
                   + (f", yes/no accuracy {a['yes_no_accuracy']:.1%}" if a["yes_no_accuracy"] is not None else ""))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Live index version and freshness, schedule, sources, models."""
    from bot.commands import format_status

    info = obj.app.status_report.status()
    click.echo(json.dumps(info, indent=2) if as_json else format_status(info))


@cli.command()
@click.pass_obj
def doctor(obj: Context) -> None:
    """Check the data dir: index readable and consistent, feedback database, voices, model cache."""
    checks = obj.app.status_report.doctor()
    for what, problem in checks:
        click.echo(f"{'ok  ' if problem is None else 'FIX '} {what}" + (f": {problem}" if problem else ""))
    if any(problem for _, problem in checks):
        click.get_current_context().exit(1)


@cli.command()
@click.pass_obj
def scheduler(obj: Context) -> None:
    """Run only the nightly re-index schedule (one per deployment; bots then set
    reindex.in_serve = false). Serves /healthz and /metrics on serve.health_port."""
    from bot.app.scheduler import ScheduleError
    from bot.app.serving import run_scheduler

    try:
        run_scheduler(obj.app, announce=lambda line: click.echo(line, err=True))
    except ScheduleError as err:
        raise click.ClickException(str(err)) from None


@cli.command()
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the chat platforms (Slack and/or Discord, per tokens and config) and the nightly re-index."""
    from bot.app.serving import ServeError, check_setup, run_serve

    try:
        check_setup(obj.app)
        _ensure_index(obj.app, quiet=False)
        run_serve(obj.app)
    except ServeError as err:
        raise click.ClickException(str(err)) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # e.g. a rejected Discord token, a port already in use
        logging.getLogger(__name__).debug("serve stopped", exc_info=True)
        raise click.ClickException(f"serve stopped: {type(err).__name__}: {err} (run with -vv for details)") from None


@cli.group()
def state() -> None:
    """Where the state replicas share lives (state.url: PostgreSQL; unset: the SQLite file)."""


@state.command(name="migrate")
@click.option("--to", "url", required=True, help="postgresql://user@host:5432/db (password: PGPASSWORD or ~/.pgpass)")
@click.option("--from", "source", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The SQLite state file (default: feedback_db, <data_dir>/feedback.sqlite).")
@click.pass_obj
def state_migrate(obj: Context, url: str, source: Path | None) -> None:
    """Copy the SQLite state (answers, ratings, threads, delivered events) into PostgreSQL; safe to run twice."""
    from bot.app.config import StateConfig
    from bot.app.pg_state import PostgresStateDatabase
    from bot.app.state_migration import MigrationRefused, migrate_state
    from bot.feedback import FeedbackUnavailable
    from bot.state_db import SqliteStateDatabase, StateDatabaseError

    from pydantic import ValidationError

    try:
        StateConfig(url=url)
    except ValidationError as err:
        raise click.ClickException("--to: " + err.errors()[0]["msg"].removeprefix("Value error, ")) from None
    path = source or obj.app.settings.feedback_path
    if not path.exists():
        raise click.ClickException(f"no SQLite state at {path}: nothing to migrate (give it with --from)")
    sqlite, target = SqliteStateDatabase(path), PostgresStateDatabase(url, pool_size=1)
    try:
        copied = migrate_state(sqlite, target)
    except (MigrationRefused, FeedbackUnavailable, StateDatabaseError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        sqlite.close()
        target.close()
    for table in copied:
        click.echo(f"{table.table}: {table.rows} row(s), {table.added} new in {target.where}")
    click.echo(f"Done: set state.url = \"{target.where}\" (SUPPORTBOT_STATE__URL) on every replica.")


@cli.group()
def feedback() -> None:
    """What users thought of the answers (👍 / 👎 from Slack and Discord)."""


@feedback.command(name="export")
@click.option("--voice", "voice_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write 👍-rated and admin-corrected answers here as voice examples (JSONL).")
@click.pass_obj
def feedback_export(obj: Context, voice_file: Path) -> None:
    """Export approved answers for `supportbot voice train`."""
    from bot.feedback import FeedbackUnavailable

    try:
        count = obj.app.feedback.export_voice(voice_file)
        totals = obj.app.feedback.counts()
    except FeedbackUnavailable as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Wrote {count} voice examples to {voice_file} (from {totals['answers']} answers: "
               f"{totals['thumbs_up']} 👍, {totals['thumbs_down']} 👎). Train with: "
               f"supportbot voice train {voice_file} --name NAME")


@cli.command()
@click.option("--since", default="7d", show_default=True,
              help="Period back from now (7d, 24h, 2w) or a date (2026-11-30); compared with the period before.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--png", "png_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a chart of the trend and the top gaps here.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained report page here (chart included).")
@click.pass_obj
def insights(obj: Context, since: str, as_json: bool, png_file: Path | None, html_file: Path | None) -> None:
    """What the docs did not answer: answer, abstention and 👍/👎 rates, escalations and answer
    time against the period before, coverage gaps grouped by meaning, pages with the most 👎."""
    from bot.feedback import FeedbackUnavailable
    from bot.insights import InsightsError

    try:
        report = obj.app.insights.report(since)
    except (InsightsError, FeedbackUnavailable) as err:
        raise click.ClickException(str(err)) from None
    png = None
    if png_file or html_file:
        from bot.app.insights_report import chart_png, report_html

        png = chart_png(report)
    try:
        if png_file:
            png_file.write_bytes(png)
        if html_file:
            html_file.write_text(report_html(report, png), encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"cannot write the report: {err.strerror or err} ({err.filename})") from None
    click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else report.summary())
    for path in (png_file, html_file):
        if path:
            click.echo(f"Wrote {path}", err=True)


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="show")
@click.pass_obj
def config_show(obj: Context) -> None:
    """The effective settings (secrets shown only as set / not set)."""
    click.echo(json.dumps(obj.app.settings.public_view(), indent=2, default=str))


@config_group.command(name="env")
def config_env() -> None:
    """Every environment variable supportbot reads, as an empty .env template."""
    from bot.app.config import env_reference

    click.echo(env_reference(), nl=False)


cli.add_command(voice)


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as abort:  # click turns Ctrl-C (and EOF at a prompt) into Abort
        interrupted = isinstance(abort.__cause__, KeyboardInterrupt) or abort.__cause__ is None
        click.echo("\nInterrupted." if interrupted else "\nAborted.", err=True)
        sys.exit(130 if interrupted else 1)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (RetrievalUnavailable, OSError, RuntimeError) as err:
        message = _one_line(err)
        if message is None:
            raise
        logging.getLogger("supportbot").debug("%s", message, exc_info=True)  # the traceback, at -vv
        click.echo(f"Error: {message}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(err: BaseException) -> str | None:
    """What an operator can act on for the faults of the machine itself (a damaged index, a
    read-only or full disk); None for anything else, which is a bug and keeps its traceback."""
    if isinstance(err, (RetrievalUnavailable, StateDatabaseError)):  # e.g. state.url's server away
        return str(err)
    fault = disk_fault(err)
    if fault == "full":
        where = f" at {err.filename}" if getattr(err, "filename", None) else ""
        return f"the disk is full{where}; free some space and run it again (the live index is untouched)"
    if fault:
        where = getattr(err, "filename", None) or "the data dir"
        return (f"cannot use {where} ({getattr(err, 'strerror', None) or 'read-only or not permitted'}); "
                f"make it readable and writable for this user, or point --data-dir / SUPPORTBOT_DATA_DIR elsewhere")
    return None
