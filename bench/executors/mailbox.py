"""The Ray executor's mailbox: a Ray actor holding the events its tasks send until the driver takes them.

A module of its own that imports nothing, so the actor's process stays a bare Ray worker (no torch, no harness).
"""

from __future__ import annotations


class Mailbox:
    """Events in the order each task sent them (a sync actor runs one caller's calls in order)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def put(self, event: dict) -> None:
        self.events.append(event)

    def take(self) -> list[dict]:
        """Every event that has arrived since the last take."""
        taken, self.events = self.events, []
        return taken
