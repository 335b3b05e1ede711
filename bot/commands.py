"""The command registry every adapter dispatches to: ask, reindex, status, help.

Plain text is a question; "/name args" is a command. Admin commands check the access policy
before doing anything, and every outcome (unknown command, refusal, busy, failure) comes
back as a Reply with a message the user can read, never as an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.acl import AccessPolicy
from bot.answering import AnswerService, TokenCallback
from bot.protocols import Reindexer, StatusSource, VoiceControl
from bot.reindex_lock import AlreadyRunning
from bot.types import Answer, Question

log = logging.getLogger(__name__)


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


@dataclass
class Reply:
    text: str
    ok: bool = True
    answer: Answer | None = None
    data: dict = field(default_factory=dict)


Handler = Callable[[str, CommandContext], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    admin_only: bool = False
    usage: str = ""


class CommandRegistry:
    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy
        self._commands: dict[str, Command] = {}

    def register(self, command: Command) -> None:
        self._commands[command.name] = command

    def is_admin(self, ctx: CommandContext) -> bool:
        return ctx.platform_admin or self.policy.is_admin(ctx.user_id, ctx.platform)

    def available(self, ctx: CommandContext) -> list[Command]:
        admin = self.is_admin(ctx)
        return [c for c in self._commands.values() if admin or not c.admin_only]

    def handle(self, text: str, ctx: CommandContext) -> Reply:
        text = text.strip()
        if not text:
            return Reply("Ask me a question about the docs, or type /help.", ok=False)
        if not text.startswith("/"):
            name, args = "ask", text
        else:
            name, _, args = text[1:].partition(" ")
            name = name.lower()
        command = self._commands.get(name)
        if command is None:
            return Reply(f"Unknown command /{name}. Type /help to see what I can do.", ok=False)
        if command.admin_only and not self.is_admin(ctx):
            log.info("refused /%s for non-admin %s on %s", name, ctx.user_id, ctx.platform)
            return Reply(f"Sorry, /{name} is for admins only.", ok=False)
        try:
            return command.handler(args.strip(), ctx)
        except Exception:
            log.exception("command /%s failed", name)
            return Reply(f"Something went wrong running /{name}; the error was logged.", ok=False)


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
                   status: StatusSource, voices: VoiceControl | None = None) -> CommandRegistry:
    """Wire the built-in commands to the core services."""
    registry = CommandRegistry(policy)

    def ask(args: str, ctx: CommandContext) -> Reply:
        if not args:
            return Reply("Usage: /ask <your question>", ok=False)
        question = Question(text=args, user_id=ctx.user_id, conversation_id=ctx.conversation_id,
                            channel_id=ctx.channel_id, platform=ctx.platform, collections=ctx.collections)
        answer = answers.answer(question, on_token=ctx.on_token)
        return Reply(answer.answer, answer=answer)

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
            try:
                previous = voices.activate_voice(name)
            except ValueError as err:
                return Reply(str(err), ok=False)
            log.info("voice %s activated by %s", name, ctx.user_id)
            return Reply(f"Active voice: {name}" + (f" (was {previous}; /voice rollback to undo)." if previous else "."))
        if action == "rollback" and not name:
            try:
                restored = voices.rollback_voice()
            except ValueError as err:
                return Reply(str(err), ok=False)
            return Reply(f"Active voice: {restored or 'base model (no voice adapter)'}.")
        if action in ("", "list"):
            active = voices.active_voice()
            names = voices.voice_names()
            listed = ", ".join(f"*{n}*" if n == active else n for n in names) or "none trained yet"
            return Reply(f"Active voice: {active or 'base model'}. Voices: {listed}.")
        return Reply("Usage: /voice [list] | /voice activate NAME | /voice rollback", ok=False)

    registry.register(Command("ask", "answer a question from the docs", ask, usage="<question>"))
    if voices is not None:
        registry.register(Command("voice", "list, activate or roll back brand voices (admins)", voice,
                                  admin_only=True, usage="[list | activate NAME | rollback]"))
    registry.register(Command("reindex", "re-index the docs now (admins)", reindex, admin_only=True))
    registry.register(Command("status", "index and model status (admins)", show_status, admin_only=True))
    registry.register(Command("help", "list commands", show_help))
    return registry
