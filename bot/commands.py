"""The command registry every surface dispatches to: ask, reindex, status, voice, insights, help.

Two typed entries: `ask(question)` and `run(name, args, ctx)`, where the context says who
asked and where. Chat platforms map their own spellings (`/supportbot reindex`) to a name;
only a text surface (the console) hands in a typed line, which `handle` parses once. Admin
commands check the access policy before doing anything, and every outcome (unknown command,
refusal, busy, failure) comes back as a Reply with a message the user can read, never as
an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.acl import AccessPolicy
from bot.answering import AnswerService, TokenCallback
from bot.feedback import FeedbackUnavailable
from bot.insights import InsightsError
from bot.protocols import Refused, Reindexer, StatusSource, VoiceControl
from bot.reindex_lock import AlreadyRunning
from bot.types import Answer, Question

log = logging.getLogger(__name__)
ASK_USAGE = "Usage: /ask <your question>"


@dataclass(frozen=True)
class CommandContext:
    user_id: str
    conversation_id: str
    platform: str
    channel_id: str | None = None
    collections: list[str] | None = None
    on_token: TokenCallback | None = None
    on_progress: Callable[[str], None] | None = None
    platform_admin: bool = False  # the platform vouches for it (Slack admin group, Discord role)
    spelling: str = "/{name}"  # how the asker's platform spells a command, for the replies that name one


@dataclass
class Reply:
    text: str
    ok: bool = True
    answer: Answer | None = None
    data: dict = field(default_factory=dict)
    monospace: bool = False  # a listing (status, voices, help): chat shows it in a code block


Handler = Callable[[str, CommandContext], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    admin_only: bool = False
    usage: str = ""
    listing: bool = False  # its successful replies are listings (shown in monospace)


class CommandRegistry:
    def __init__(self, policy: AccessPolicy, answer: Callable[[Question, TokenCallback | None], Reply]) -> None:
        self.policy = policy
        self._answer = answer
        self._commands: dict[str, Command] = {}

    def register(self, command: Command) -> None:
        self._commands[command.name] = command

    def is_admin(self, user_id: str, platform: str, platform_admin: bool = False) -> bool:
        """`platform_admin`: the platform vouches for it (Slack admin group, Discord role)."""
        return platform_admin or self.policy.is_admin(user_id, platform)

    def available(self, ctx: CommandContext) -> list[Command]:
        admin = self.is_admin(ctx.user_id, ctx.platform, ctx.platform_admin)
        return [c for c in self._commands.values() if admin or not c.admin_only]

    def ask(self, question: Question, on_token: TokenCallback | None = None) -> Reply:
        """Answer a question: the typed entry chat platforms use (no command parsing)."""
        text = question.text.strip()
        if not text:
            return Reply(ASK_USAGE, ok=False)
        asked = question if text == question.text else question.model_copy(update={"text": text})
        return self._guarded("/ask", lambda: self._answer(asked, on_token))

    def run(self, name: str, args: str, ctx: CommandContext) -> Reply:
        """Run the command `name` for the asker in `ctx`: admin check, then its handler."""
        command = self._commands.get(name)
        spelled = ctx.spelling.format(name=name)
        if command is None:
            return Reply(f"Unknown command {spelled}. Type /help to see what I can do.", ok=False)
        if command.admin_only and not self.is_admin(ctx.user_id, ctx.platform, ctx.platform_admin):
            log.info("refused /%s for non-admin %s on %s", name, ctx.user_id, ctx.platform)
            return Reply(f"Sorry, {spelled} is for admins only.", ok=False)
        reply = self._guarded(spelled, lambda: command.handler(args.strip(), ctx))
        reply.monospace = command.listing and reply.ok
        return reply

    @staticmethod
    def _guarded(spelled: str, work: Callable[[], Reply]) -> Reply:
        """Every outcome as a Reply: a refusal says why, anything else is a logged bug."""
        try:
            return work()
        except Refused as refused:  # a reason the asker can act on, not a bug
            return Reply(str(refused), ok=False)
        except Exception:
            log.exception("command %s failed", spelled)
            return Reply(f"Something went wrong running {spelled}; the error was logged.", ok=False)

    def handle(self, text: str, ctx: CommandContext) -> Reply:
        """A line typed on a text surface: plain text is a question, "/name args" a command."""
        text = text.strip()
        if not text:
            return Reply("Ask me a question about the docs, or type /help.", ok=False)
        if not text.startswith("/"):
            return self.run("ask", text, ctx)
        name, _, args = text[1:].partition(" ")
        return self.run(name.lower(), args, ctx)


def format_status(info: dict) -> str:
    """One "key: value" line each; nested per-source figures indented under their key."""
    lines = []
    for key, value in info.items():
        label = key.replace("_", " ")
        if isinstance(value, dict):
            lines.append(f"{label}:")
            lines += [f"  {k}: {v}" for k, v in value.items()]
        else:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def build_registry(policy: AccessPolicy, answers: AnswerService, reindexer: Reindexer,
                   status: StatusSource, voices: VoiceControl | None = None,
                   insights: Callable[[str], str] | None = None) -> CommandRegistry:
    """Wire the built-in commands to the core services. `insights(since)` is the summary of
    what the docs did not answer since then (raises InsightsError for a bad `since`)."""
    def answer(question: Question, on_token: TokenCallback | None) -> Reply:
        answer = answers.answer(question, on_token=on_token)
        return Reply(answer.answer, answer=answer)

    registry = CommandRegistry(policy, answer)

    def ask(args: str, ctx: CommandContext) -> Reply:
        """The text surfaces' route ("/ask ..." or a plain line); platforms call registry.ask."""
        if not args:
            return Reply(ASK_USAGE, ok=False)
        return answer(Question(text=args, user_id=ctx.user_id, conversation_id=ctx.conversation_id,
                               channel_id=ctx.channel_id, platform=ctx.platform, collections=ctx.collections),
                      ctx.on_token)

    def reindex(args: str, ctx: CommandContext) -> Reply:
        def progress(stage: str, done: int, total: int) -> None:
            if ctx.on_progress:
                ctx.on_progress(f"{stage} {done}/{total}")

        try:
            outcome = reindexer.reindex(progress, started_by=ctx.user_id,
                                        trigger="cli" if ctx.platform == "cli" else "chat")
        except AlreadyRunning as busy:
            return Reply(str(busy), ok=False, data={"running": busy.job.started_by})
        data = outcome.to_dict()
        return Reply(outcome.summary(), ok=not data.get("rejected"), data=data)  # a gate rejection is not ok

    def show_status(args: str, ctx: CommandContext) -> Reply:
        info = status.status()
        return Reply(format_status(info), data=info)

    def show_help(args: str, ctx: CommandContext) -> Reply:
        lines = ["Ask me anything about the docs in plain words, or use a command:"]
        lines += [f"  /{c.name}{' ' + c.usage if c.usage else ''} - {c.help}" for c in registry.available(ctx)]
        return Reply("\n".join(lines))

    def voice(args: str, ctx: CommandContext) -> Reply:
        assert voices is not None
        action, _, name = args.partition(" ")
        name = name.strip()
        if action == "activate" and name:
            previous = voices.activate_voice(name)  # VoiceRefused: an unknown voice, another base model's
            log.info("voice %s activated by %s", name, ctx.user_id)
            return Reply(f"Active voice: {name}" + (f" (was {previous}; /voice rollback to undo)." if previous else "."))
        if action == "rollback" and not name:
            restored = voices.rollback_voice()  # VoiceRefused: nothing to roll back to
            return Reply(f"Active voice: {restored or 'base model (no voice adapter)'}.")
        if action in ("", "list"):
            active = voices.active_voice()
            names = voices.voice_names()
            listed = ", ".join(f"*{n}*" if n == active else n for n in names) or "none trained yet"
            return Reply(f"Active voice: {active or 'base model'}. Voices: {listed}.")
        return Reply("Usage: /voice [list] | /voice activate NAME | /voice rollback", ok=False)

    def show_insights(args: str, ctx: CommandContext) -> Reply:
        assert insights is not None
        try:
            return Reply(insights(args or "7d"))
        except InsightsError as err:
            return Reply(str(err).replace("--since ", ""), ok=False)
        except FeedbackUnavailable as err:  # the store is damaged: say which file and what to do
            return Reply(str(err), ok=False)

    registry.register(Command("ask", "answer a question from the docs", ask, usage="<question>"))
    if voices is not None:
        registry.register(Command("voice", "list, activate or roll back brand voices (admins)", voice,
                                  admin_only=True, usage="[list | activate NAME | rollback]", listing=True))
    registry.register(Command("reindex", "re-index the docs now (admins)", reindex, admin_only=True))
    if insights is not None:
        registry.register(Command("insights", "answer rates and what the docs did not answer (admins)",
                                  show_insights, admin_only=True, usage="[7d | 24h | 2w | DATE]"))
    registry.register(Command("status", "index and model status (admins)", show_status, admin_only=True,
                              listing=True))
    registry.register(Command("help", "list commands", show_help, listing=True))
    return registry
