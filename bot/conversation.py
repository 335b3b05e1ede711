"""Per-conversation memory: the last few turns of each thread, DM or console session."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from bot.types import Turn


class ConversationMemory:
    """Bounded in turns per conversation, in conversations, and in idle time."""

    def __init__(self, max_turns: int = 3, max_conversations: int = 2000, ttl_seconds: float = 86400) -> None:
        self.max_turns = max_turns
        self.max_conversations = max_conversations
        self.ttl_seconds = ttl_seconds
        self._turns: OrderedDict[str, tuple[float, deque[Turn]]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, conversation_id: str) -> list[Turn]:
        if not conversation_id:
            return []
        with self._lock:
            entry = self._turns.get(conversation_id)
            if entry is None:
                return []
            stamp, turns = entry
            if time.monotonic() - stamp > self.ttl_seconds:
                del self._turns[conversation_id]
                return []
            return list(turns)

    def remember(self, conversation_id: str, turn: Turn) -> None:
        if self.max_turns <= 0 or not conversation_id:
            return
        with self._lock:
            _, turns = self._turns.pop(conversation_id, (0.0, deque(maxlen=self.max_turns)))
            turns.append(turn)
            self._turns[conversation_id] = (time.monotonic(), turns)
            while len(self._turns) > self.max_conversations:
                self._turns.popitem(last=False)

    def forget(self, conversation_id: str) -> None:
        with self._lock:
            self._turns.pop(conversation_id, None)
