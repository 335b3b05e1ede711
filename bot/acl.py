"""Who may run admin commands. Platforms prefix user ids ("slack:U123") so ids never collide."""

from __future__ import annotations

from collections.abc import Iterable


class AccessPolicy:
    def __init__(self, admins: Iterable[str] = (), trusted_platforms: Iterable[str] = ()) -> None:
        self.admins = frozenset(a.strip() for a in admins if a.strip())
        # Platforms where whoever is at the keyboard already owns the box (the console).
        self.trusted_platforms = frozenset(trusted_platforms)

    def is_admin(self, user_id: str, platform: str) -> bool:
        return platform in self.trusted_platforms or user_id in self.admins
