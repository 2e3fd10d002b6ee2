"""When: the schedule (start and end), office hours in the message's time zone, the per-message cap and the
workspace's minimum gap between any two messages to one contact. Pure: ``now`` is always passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from .document import WEEKDAYS, Frequency, OfficeHours, Schedule
from .rules import Rule

DAY = 86400


def in_office_hours(hours: OfficeHours, tz_name: str, now: int) -> bool:
    """Is ``now`` within the office hours (local time in ``tz_name``)? Hours whose end is before their start
    run past midnight: Friday 22:00–02:00 includes Saturday 01:00."""
    local = dt.datetime.fromtimestamp(now, tz=ZoneInfo(tz_name))
    t, day = local.time().replace(tzinfo=None), local.weekday()
    if hours.start < hours.end:
        return day in hours.days and hours.start <= t < hours.end
    return (day in hours.days and t >= hours.start) or ((day - 1) % 7 in hours.days and t < hours.end)


def schedule_rules(schedule: Schedule, now: int) -> list[Rule]:
    rules = []
    if schedule.start is not None or schedule.end is not None:
        if schedule.start is not None and now < schedule.start:
            rules.append(Rule("schedule", False, f"The message starts {_local(schedule.start, schedule.timezone)}."))
        elif schedule.end is not None and now >= schedule.end:
            rules.append(Rule("schedule", False, f"The message ended {_local(schedule.end, schedule.timezone)}."))
        else:
            rules.append(Rule("schedule", True, "Within the message's start and end dates."))
    if schedule.office_hours is not None:
        h = schedule.office_hours
        ok = in_office_hours(h, schedule.timezone, now)
        span = (f"{', '.join(WEEKDAYS[d].capitalize() for d in h.days)} {h.start:%H:%M}–{h.end:%H:%M} "
                f"{schedule.timezone}")
        rules.append(Rule("office_hours", ok, f"It is {_local(now, schedule.timezone)}: "
                                              f"{'within' if ok else 'outside'} office hours ({span})."))
    return rules


def cap_rule(frequency: Frequency, sent_at: Sequence[int], now: int) -> Rule:
    """At most ``max`` deliveries of this message to the contact per ``per_days`` days (a sliding window)."""
    if frequency.max is None:
        return Rule("frequency", True, "No frequency cap.")
    since = now - frequency.per_days * DAY
    n = sum(1 for t in sent_at if t > since)
    window = "day" if frequency.per_days == 1 else f"{frequency.per_days} days"
    ok = n < frequency.max
    return Rule("frequency", ok, f"Sent {n} time(s) to this contact in the last {window}: the cap is "
                                 f"{frequency.max}" + ("." if ok else " (reached)."))


def gap_rule(gap_minutes: int | None, last_any_at: int | None, now: int) -> Rule | None:
    """The workspace's "at most one message per contact per M minutes" (None when the setting is off)."""
    if not gap_minutes:
        return None
    if last_any_at is None or last_any_at <= now - gap_minutes * 60:
        return Rule("workspace_gap", True, f"No message sent to this contact in the last {gap_minutes} minutes.")
    ago = max(0, (now - last_any_at) // 60)
    return Rule("workspace_gap", False, f"A message was sent to this contact {ago} minute(s) ago: the workspace "
                                        f"allows one per {gap_minutes} minutes.")


def _local(ts: int, tz_name: str) -> str:
    d = dt.datetime.fromtimestamp(ts, tz=ZoneInfo(tz_name))
    return f"{d.strftime('%a')} {d.day} {d.strftime('%b %Y %H:%M')} {tz_name}"
