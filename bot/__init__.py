"""Platform-neutral core of supportbot: types, answering, commands, access control, CLI."""
