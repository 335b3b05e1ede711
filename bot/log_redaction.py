"""Keep tokens out of logs, whatever logs them (our code, slack_sdk, discord.py, a traceback).

A filter on the root handlers rewrites each record's message: the configured secret values
and anything shaped like a Slack token become "[redacted]", and a message longer than
MAX_MESSAGE_CHARS is cut there (a library logging a whole request body cannot grow the log
by megabytes).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_TOKEN_SHAPES = re.compile(r"\b(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]{8,}")
REDACTED = "[redacted]"
MAX_MESSAGE_CHARS = 4000


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if len(clean) > MAX_MESSAGE_CHARS:
            clean = f"{clean[:MAX_MESSAGE_CHARS]}… ({len(clean) - MAX_MESSAGE_CHARS:,} more characters not logged)"
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def install(secrets: Iterable[str] = ()) -> RedactSecrets:
    """Attach one redacting filter to every handler of the root logger."""
    redactor = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    return redactor
