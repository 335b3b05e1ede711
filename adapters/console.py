"""The console chat: the same core and commands the chat platforms use, on a terminal.

Plain lines are questions (follow-ups share the session's memory); /help, /status and
/reindex are dispatched to the command registry; /new starts a fresh conversation and
/quit (or Ctrl-D) leaves. The answer streams in as it is generated.
"""

from __future__ import annotations

import sys
import uuid
from typing import TextIO

from bot.commands import CommandContext, CommandRegistry
from bot.rendering import plain_sources

BANNER = "supportbot console - ask about the docs. /help for commands, /new for a fresh conversation, /quit to leave."


class ConsoleChat:
    def __init__(self, registry: CommandRegistry, user_id: str, stdin: TextIO | None = None,
                 stdout: TextIO | None = None) -> None:
        self.registry = registry
        self.user_id = user_id
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.conversation_id = self._new_conversation()

    @staticmethod
    def _new_conversation() -> str:
        return f"console-{uuid.uuid4().hex[:8]}"

    def _write(self, text: str, end: str = "\n") -> None:
        self.stdout.write(text + end)
        self.stdout.flush()

    def run(self) -> None:
        self._write(BANNER)
        interactive = self.stdin.isatty()
        while True:
            if interactive:
                self._write("\nyou> ", end="")
            try:
                line = self.stdin.readline()
            except KeyboardInterrupt:
                self._write("")
                continue
            if not line:  # EOF
                self._write("bye.")
                return
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                self._write("bye.")
                return
            if line == "/new":
                self.conversation_id = self._new_conversation()
                self._write("Started a new conversation.")
                continue
            try:
                self.handle(line)
            except KeyboardInterrupt:
                self._write("\n(interrupted)")

    def handle(self, line: str) -> None:
        streamed: list[str] = []
        progressed: list[str] = []

        def on_token(piece: str) -> None:
            if not streamed:
                self._write("bot> ", end="")
            streamed.append(piece)
            self._write(piece, end="")

        def on_progress(line: str) -> None:
            progressed.append(line)
            self._write(f"\r  re-indexing: {line}   ", end="")

        ctx = CommandContext(user_id=self.user_id, conversation_id=self.conversation_id, platform="console",
                             on_token=on_token, on_progress=on_progress)
        reply = self.registry.handle(line, ctx)
        if streamed or progressed:
            self._write("")  # end the streamed or in-place line
        if not streamed:
            self._write("bot> " + reply.text)
        elif reply.answer is not None and reply.answer.answer != "".join(streamed).strip():
            # The stream showed raw model text; the answer kept is tidied (runaway text and
            # invented citations removed). Show what was kept, since a terminal cannot edit.
            self._write("bot> (as kept) " + reply.answer.answer)
        if reply.answer is not None:
            sources = plain_sources(reply.answer)
            if sources:
                self._write(sources)
