"""The facts a decision reads and the verdicts it gives: one :class:`Rule` per check, passing or failing,
with a sentence a teammate can read ("Would this show for Ada, now? Why not?")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECENT_SECONDS = 600  # only events whose created_at is within the last 10 minutes trigger


@dataclass(frozen=True)
class Rule:
    name: str  # trigger, recent, metadata, first_time, state, role, event_filter, attribute, page_url,
    #            schedule, office_hours, frequency, workspace_gap
    passed: bool
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.name, "passed": self.passed, "why": self.sentence}


@dataclass(frozen=True)
class TrackedEvent:
    """The event a decision is about (as validated by ingest: its metadata typed by ``metadata.py``)."""

    name: str
    created_at: int
    dedupe_key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_types: dict[str, str] = field(default_factory=dict)
    page_url: str | None = None
    received_at: int | None = None  # default: the decision's ``now``


@dataclass(frozen=True)
class History:
    """What the store knows that a decision needs (read by the engine, so ``decide`` stays pure)."""

    went_live_at: int | None = None
    sent_at: tuple[int, ...] = ()  # this message's deliveries to the contact (within its frequency window)
    last_any_at: int | None = None  # the contact's latest delivery of any message
    gap_minutes: int | None = None  # the workspace's "one message per contact per M minutes" (None: off)
    earlier_occurrences: int = 0  # the contact's earlier events of the trigger's name since going live
    event_filters: tuple[bool, ...] = ()  # each audience event filter, in order (evaluated on the store)
