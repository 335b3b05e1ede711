"""Slack adapter (slack-bolt): mentions, threads, DMs, slash commands, feedback buttons."""
