"""What every `supportbot` subcommand is handed: the application, built from the settings
the group callback loaded (models load only when a command first needs them)."""

from __future__ import annotations

from bot.app.application import App
from bot.app.config import Settings


class Context:
    def __init__(self, settings: Settings) -> None:
        self.app = App(settings)
