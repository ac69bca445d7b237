"""The per-process Redis followers that feed live subscriptions (each feed's Context gets them)."""

from __future__ import annotations

from dataclasses import dataclass

from server.api.crowd.hub import CrowdHub
from server.api.inbox.hub import InboxHub
from server.api.push.progress_hub import ProgressHub


@dataclass(frozen=True, slots=True)
class LiveHubs:
    crowd: CrowdHub
    inbox: InboxHub
    progress: ProgressHub
