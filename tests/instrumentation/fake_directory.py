"""A scriptable Building Directory: an ASGI app for uvicorn on loopback.

Known buildings answer 200, unknown ids 404, and a test can script the next
answers for an id (status, raw body, content type, delay) or fix one answer for
every call. Calls are counted per id, which is how tests prove what reached the
network. The state is shared with the server's thread, so every access locks.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = "/api/v1/buildings/"


def make_building(building_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Return a building in the nested shape; ``fields`` replace or add keys."""
    building: dict[str, Any] = {
        "id": building_id or str(uuid.uuid4()),
        "name": "Haus am See",
        "address": {
            "street": "Seestraße 1",
            "city": "Berlin",
            "postal_code": "13353",
            "country": "DE",
        },
        "is_active": True,
        "management_company_id": "00000000-0000-0000-0000-000000000001",
        "location": {"coordinates": {"lat": 52.55, "lng": 13.35}},
    }
    building.update(fields)
    return building


@dataclass(frozen=True)
class Scripted:
    """One scripted answer: status, raw body, content type, delay, more headers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


class FakeDirectory:
    """The state behind the fake Building Directory; safe across threads."""

    def __init__(self) -> None:
        self.url = ""
        self._lock = threading.Lock()
        self._buildings: dict[str, dict[str, Any]] = {}
        self._scripts: dict[str, deque[Scripted]] = {}
        self._always: dict[str, Scripted] = {}
        self.calls: Counter[str] = Counter()
        self.delay = 0.0

    def reset(self) -> None:
        """Forget buildings, scripts and counts."""
        with self._lock:
            self._buildings.clear()
            self._scripts.clear()
            self._always.clear()
            self.calls.clear()
            self.delay = 0.0

    def add(self, building: dict[str, Any]) -> str:
        """Serve ``building`` under its id; return the id."""
        with self._lock:
            self._buildings[building["id"]] = building
        return str(building["id"])

    def script(self, building_id: str, *answers: Scripted) -> None:
        """Answer the next calls for ``building_id`` with ``answers``, in order."""
        with self._lock:
            self._scripts.setdefault(building_id, deque()).extend(answers)

    def always(self, building_id: str, answer: Scripted) -> None:
        """Answer every call for ``building_id`` with ``answer`` (after scripts)."""
        with self._lock:
            self._always[building_id] = answer

    def total_calls(self) -> int:
        """Calls received for any id."""
        with self._lock:
            return sum(self.calls.values())

    def answer_for(self, building_id: str) -> Scripted:
        with self._lock:
            self.calls[building_id] += 1
            queue = self._scripts.get(building_id)
            if queue:
                return queue.popleft()
            if building_id in self._always:
                return self._always[building_id]
            building = self._buildings.get(building_id)
            delay = self.delay
        if building is None:
            return Scripted(404, b'{"detail": "building not found"}', delay=delay)
        return Scripted(200, json.dumps(building).encode(), delay=delay)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            answer = Scripted(200, b'{"status": "ok"}')
        elif path.startswith(PREFIX):
            answer = self.answer_for(path[len(PREFIX) :])
        else:
            answer = Scripted(404, b'{"detail": "no such path"}')
        if answer.delay:
            await asyncio.sleep(answer.delay)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", answer.content_type.encode()),
                    *((k.encode(), v.encode()) for k, v in answer.headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
