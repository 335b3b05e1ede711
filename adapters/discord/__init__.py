"""Discord adapter (discord.py): /ask, mentions in threads, /supportbot admin commands, feedback."""
