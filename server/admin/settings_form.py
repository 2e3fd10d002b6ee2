"""The Settings page's form, read and checked: what would change, what is wrong, what needs confirming.

Pure functions over the posted fields, so the rules are tested without HTTP. A checkbox that is not posted
is off (HTML sends nothing for an unchecked box): the page always posts the whole form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..origins import normalise_origin
from ..store.models import Workspace

SWITCHES = ("enforce_identity_verification", "strict_metadata", "consent_required", "honour_gpc", "page_views")
MIN_RETENTION, MAX_RETENTION = 1, 3650  # as `trailmark workspace set --retention-days`
MAX_ORIGINS = 50
GRACE_DAYS = (1, 7, 14, 30)
DEFAULT_GRACE_DAYS = 7


@dataclass
class SettingsForm:
    """The form as posted: ``values`` to show again, ``changes`` to store, ``errors`` by field."""

    values: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    risky: list[str] = field(default_factory=list)  # destructive changes, in words: they need a confirmation


def current_values(ws: Workspace) -> dict[str, Any]:
    """The form filled in with the workspace's settings as stored."""
    values: dict[str, Any] = {name: getattr(ws, name) for name in SWITCHES}
    values["retention_days"] = str(ws.retention_days)
    values["allowed_origins"] = "\n".join(ws.allowed_origins)
    return values


def read_settings(ws: Workspace, form: Mapping[str, Any]) -> SettingsForm:
    def text(name: str, limit: int) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    values: dict[str, Any] = {name: bool(form.get(name)) for name in SWITCHES}
    values["retention_days"] = text("retention_days", 10).strip()
    values["allowed_origins"] = text("allowed_origins", 20_000)
    result = SettingsForm(values)
    for name in SWITCHES:
        if values[name] != getattr(ws, name):
            result.changes[name] = values[name]

    days = values["retention_days"]
    if not days.isdigit() or not MIN_RETENTION <= int(days) <= MAX_RETENTION:
        result.errors["retention_days"] = f"Enter a whole number of days from {MIN_RETENTION} to {MAX_RETENTION:,}."
    elif int(days) != ws.retention_days:
        result.changes["retention_days"] = int(days)

    origins: list[str] = []
    for line in values["allowed_origins"].splitlines():
        if not line.strip():
            continue
        try:
            origin = normalise_origin(line)
        except ValueError as exc:
            result.errors["allowed_origins"] = f"{exc}; give one origin per line."
            break
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        result.errors["allowed_origins"] = f"At most {MAX_ORIGINS} origins."
    if "allowed_origins" not in result.errors and tuple(origins) != ws.allowed_origins:
        result.changes["allowed_origins"] = origins

    if ws.enforce_identity_verification and result.changes.get("enforce_identity_verification") is False:
        result.risky.append("Turn identity verification off: any browser will be able to boot as any user_id, and "
                            "events it tracks will land on that user.")
    if result.changes.get("retention_days", ws.retention_days) < ws.retention_days:
        result.risky.append(f"Shorten retention from {ws.retention_days} to {result.changes['retention_days']} days: "
                            "anonymous visitors' events older than that are deleted at the next purge, for good, "
                            "and new leads' histories reach back less far.")
    return result


def read_grace_days(value: Any) -> int | None:
    """The grace period picked for a rotation, if it is one the page offers."""
    return int(value) if isinstance(value, str) and value.isdigit() and int(value) in GRACE_DAYS else None
