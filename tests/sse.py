"""A plain Server-Sent Events reader over httpx, as an integrator would write it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson


@dataclass(frozen=True)
class Message:
    id: str | None
    data: dict


def messages(response: httpx.Response) -> Iterator[Message | None]:
    """Each event in order; None for a heartbeat comment (so callers can stop on quiet)."""
    event_id: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield None
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line == "" and data:
            yield Message(event_id, orjson.loads("\n".join(data)))
            data = []
