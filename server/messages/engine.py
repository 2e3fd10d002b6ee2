"""The entry point ingest calls: ``messages_for_event(store, workspace, contact, event, source=…, page_url=…,
now=…)`` → the deliveries this event produced.

Cheap when no live message is triggered by the event's name: the workspace's live messages are kept parsed
in memory by trigger name for :data:`CACHE_SECONDS` (applying or changing a message in this process clears
it; other processes see the change within that time), so such an event costs one dict lookup.

Which events trigger: only those received after the message went live, with ``created_at`` within the last
10 minutes; an import never triggers. A browser event ("js") may show every kind at once; a server source
(REST, Segment, Stripe) never shows a banner (there is no page to show it on), and its posts and chats become
*pending* deliveries, handed to the contact's next page view within :data:`PENDING_DAYS` days.

A retried event (the same dedupe key) never triggers twice: it gets the delivery of its first try back.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from ..store.messages import Delivery, StoredMessage
from ..store.models import Contact, EventResult, NewEvent, Workspace
from .content import render_text
from .decide import Decision, decide
from .document import DocumentInvalid, Message, parse_message
from .frequency import DAY
from .rules import RECENT_SECONDS, History, TrackedEvent

CACHE_SECONDS = 5.0
PENDING_DAYS = 7
BROWSER_SOURCES = frozenset({"js", "browser"})
NEVER_TRIGGER = frozenset({"import"})


@dataclasses.dataclass
class _Live:
    expires: float
    by_event: dict[str, list[tuple[StoredMessage, Message]]]
    gap_minutes: int | None


def _cache(store: Any) -> dict[int, _Live]:
    cache: dict[int, _Live] = store.messages.live_cache
    return cache


async def live_messages(store: Any, workspace: Workspace) -> _Live:
    """The workspace's live messages by trigger name, parsed (cached briefly)."""
    cache = _cache(store)
    hit = cache.get(workspace.id)
    if hit is not None and hit.expires > time.monotonic():
        return hit
    by_event: dict[str, list[tuple[StoredMessage, Message]]] = {}
    for name, stored in (await store.messages.live_by_event(workspace.id)).items():
        for s in stored:
            try:
                by_event.setdefault(name, []).append((s, parse_message(s.document)))
            except DocumentInvalid:  # stored by an older version with other rules: skipped, not fatal
                continue
    live = _Live(time.monotonic() + CACHE_SECONDS, by_event, await store.messages.gap_minutes(workspace))
    if len(cache) > 10_000:
        cache.clear()
    cache[workspace.id] = live
    return live


async def history_for(store: Any, workspace: Workspace, stored: StoredMessage, message: Message, contact: Contact,
                      event: TrackedEvent, now: int, gap_minutes: int | None) -> History:
    """What ``decide`` needs from the store for this message, contact and event."""
    per_days = message.frequency.per_days
    sent = await store.messages.sent_times(workspace, stored.id, contact.id, now - per_days * DAY)
    earlier = 0
    if message.trigger.when == "first_time" and stored.went_live_at is not None:
        earlier = await store.messages.earlier_occurrences(workspace, contact.id, message.trigger.event,
                                                           stored.went_live_at, event.created_at, event.dedupe_key)
    filters = await store.messages.event_filters_match(workspace, contact.id, message.audience.events, now)
    last_any = await store.messages.last_delivery_at(workspace, contact.id) if gap_minutes else None
    return History(went_live_at=stored.went_live_at, sent_at=tuple(sent), last_any_at=last_any,
                   gap_minutes=gap_minutes, earlier_occurrences=earlier, event_filters=tuple(filters))


def render_content(message: Message, event: TrackedEvent, contact: Contact | None) -> dict[str, Any]:
    """What the browser shows: the content with every placeholder filled, as text."""
    tz = ZoneInfo(message.schedule.timezone)

    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        return render_text(text, metadata=event.metadata, metadata_types=event.metadata_types, contact=contact,
                           tz=tz)

    c = message.content
    out: dict[str, Any] = {"kind": message.kind, "message": message.key}
    for name, value in (("text", fill(c.text)), ("title", fill(c.title)), ("body", fill(c.body)),
                        ("image_url", c.image_url)):
        if value is not None:
            out[name] = value
    if c.button is not None:
        out["button"] = {"label": fill(c.button.label), "url": c.button.url}
    if message.banner is not None:
        out["banner"] = {"position": message.banner.position, "style": message.banner.style,
                         "dismissible": message.banner.dismissible}
    if message.chat_from is not None:
        out["from"] = message.chat_from
    return out


async def explain(store: Any, workspace: Workspace, stored: StoredMessage, message: Message, contact: Contact,
                  event: TrackedEvent, now: int) -> Decision:
    """The full decision for the admin ("Would this show for Ada, now? Why not?"), every rule evaluated."""
    gap = await store.messages.gap_minutes(workspace)
    history = await history_for(store, workspace, stored, message, contact, event, now, gap)
    return decide(message, event, contact, history, now)


async def may_trigger(store: Any, workspace: Workspace, name: str) -> bool:
    """Whether a live message of the workspace is triggered by events named ``name``: one dict lookup (and
    the live messages read again at most every :data:`CACHE_SECONDS`). Lets ingest skip looking the contact
    up for the events no message is about."""
    live = _cache(store).get(workspace.id)
    if live is None or live.expires <= time.monotonic():
        live = await live_messages(store, workspace)
    return bool(live.by_event.get(name))


async def messages_for_event(store: Any, workspace: Workspace, contact: Contact, event: TrackedEvent, *,
                             source: str, page_url: str | None = None, now: int | None = None) -> list[Delivery]:
    """Decide, cap, record and return the deliveries ``event`` produces for ``contact`` (the live contact
    that tracked it). Browser: what to show now (sent). Server sources: the pending posts and chats recorded
    for the next page view (never banners). Imports: nothing."""
    if source in NEVER_TRIGGER:
        return []
    live = _cache(store).get(workspace.id)
    if live is None or live.expires <= time.monotonic():
        live = await live_messages(store, workspace)
    candidates = live.by_event.get(event.name)
    if not candidates:
        return []
    t = int(time.time()) if now is None else now
    if event.created_at < t - RECENT_SECONDS:
        return []
    if page_url is not None and event.page_url is None:
        event = dataclasses.replace(event, page_url=page_url)
    browser = source in BROWSER_SOURCES
    out: list[Delivery] = []
    for stored, message in candidates:
        if not browser and message.kind == "banner":
            continue
        earlier = await store.messages.find_delivery(workspace, stored.id, event.dedupe_key)
        if earlier is not None:  # a retry of the same event: the same delivery, never a second one
            out.append(earlier)
            continue
        # The rules that need no query first (name, age, metadata, role, attributes, page, schedule): with
        # an empty history only those can fail.
        optimistic = History(went_live_at=stored.went_live_at, event_filters=(True,) * len(message.audience.events))
        if not decide(message, event, contact, optimistic, t).send:
            continue
        history = await history_for(store, workspace, stored, message, contact, event, t, live.gap_minutes)
        if not decide(message, event, contact, history, t).send:
            continue
        cap = None
        if message.frequency.max is not None:
            cap = (message.frequency.max, t - message.frequency.per_days * DAY)
        delivery, _ = await store.messages.record_delivery(
            workspace, stored, contact.id, event.dedupe_key, source=source,
            content=render_content(message, event, contact),
            pending_days=None if browser else PENDING_DAYS, cap=cap,
            gap_since=t - live.gap_minutes * 60 if live.gap_minutes else None, now=t)
        if delivery is not None:
            out.append(delivery)
    return out


def tracked(event: NewEvent, page_url: str | None = None) -> TrackedEvent:
    """A validated event as the rules read it."""
    return TrackedEvent(name=event.event_name, created_at=event.created_at, dedupe_key=event.dedupe_key,
                        metadata=event.metadata, metadata_types=event.metadata_types, page_url=page_url)


async def for_server_events(store: Any, workspace: Workspace, contact: Contact, events: Sequence[NewEvent],
                            results: Sequence[EventResult], *, source: str) -> None:
    """What every server-side source (REST ``POST /events``, Segment, Stripe) does after ``append_events``:
    each stored event (accepted, or a duplicate: its first delivery again) goes through the engine, so its
    posts and chats wait, pending, for the contact's next page view. One place, so no source forgets a rule
    (never a banner, never an import)."""
    for event, result in zip(events, results, strict=True):
        if result.status in ("accepted", "duplicate") and await may_trigger(store, workspace, event.event_name):
            await messages_for_event(store, workspace, contact, tracked(event), source=source)
