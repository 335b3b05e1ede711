"""`python -m bot` runs the supportbot CLI."""

from bot.app.cli import main

main()
