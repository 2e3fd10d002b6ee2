"""Plain records the store returns. No behaviour beyond small derived properties."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VISITOR, LEAD, USER = "visitor", "lead", "user"
ROLES = (VISITOR, LEAD, USER)


@dataclass(frozen=True)
class Workspace:
    id: int
    app_id: str
    name: str
    access_token: str | None  # only on a workspace just made (create_workspace): stored as a hash
    signing_key: str
    identity_secret: str
    previous_identity_secret: str | None
    previous_secret_expires_at: int | None
    enforce_identity_verification: bool
    strict_metadata: bool
    allowed_origins: tuple[str, ...]
    retention_days: int
    created_at: int
    # New event names from unverified browsers, per day (server/store/name_policy.py); names browsers may
    # create (empty: any).
    browser_new_names_per_contact: int = 10
    browser_new_names_per_address: int = 30
    browser_event_names: tuple[str, ...] = ()
    consent_required: bool = False  # the shim waits for Intercom('consent', 'granted') (docs/privacy.md)
    honour_gpc: bool = False  # Global Privacy Control / Do Not Track mean "denied"
    page_views: bool = True  # the shim records page views (server/page_views.py)

    @classmethod
    def from_row(cls, row: Any) -> Workspace:
        return cls(
            id=row["id"], app_id=row["app_id"], name=row["name"], access_token=None,
            signing_key=row["signing_key"], identity_secret=row["identity_secret"],
            previous_identity_secret=row["previous_identity_secret"],
            previous_secret_expires_at=row["previous_secret_expires_at"],
            enforce_identity_verification=bool(row["enforce_identity_verification"]),
            strict_metadata=bool(row["strict_metadata"]),
            allowed_origins=tuple(json.loads(row["allowed_origins"] or "[]")),
            retention_days=row["retention_days"], created_at=row["created_at"],
            browser_new_names_per_contact=row["browser_new_names_per_contact"],
            browser_new_names_per_address=row["browser_new_names_per_address"],
            browser_event_names=tuple(json.loads(row["browser_event_names"] or "[]")),
            consent_required=bool(row["consent_required"]), honour_gpc=bool(row["honour_gpc"]),
            page_views=bool(row["page_views"]))

    def identity_secrets(self, now: int) -> list[str]:
        """The secrets that verify ``user_hash``/JWTs now: the current one, and the previous one during
        its rotation grace period."""
        secrets = [self.identity_secret]
        if self.previous_identity_secret and (self.previous_secret_expires_at or 0) > now:
            secrets.append(self.previous_identity_secret)
        return secrets

    def settings_dict(self) -> dict[str, Any]:
        """Every setting, and the identity secret (the customer's server needs it to compute user_hash);
        never the access token (``trailmark token create`` shows a new one)."""
        return {"app_id": self.app_id, "name": self.name,
                "identity_secret": self.identity_secret,
                "previous_identity_secret_expires_at": (self.previous_secret_expires_at
                                                        if self.previous_identity_secret else None),
                "allowed_origins": list(self.allowed_origins),
                "enforce_identity_verification": self.enforce_identity_verification,
                "strict_metadata": self.strict_metadata, "retention_days": self.retention_days,
                "browser_new_names_per_contact": self.browser_new_names_per_contact,
                "browser_new_names_per_address": self.browser_new_names_per_address,
                "browser_event_names": list(self.browser_event_names),
                "consent_required": self.consent_required, "honour_gpc": self.honour_gpc,
                "page_views": self.page_views,
                "created_at": self.created_at}

    def public_dict(self) -> dict[str, Any]:
        """The settings and the access token: printed once, when the workspace is made."""
        return {**self.settings_dict(), "access_token": self.access_token}


@dataclass(frozen=True)
class AccessToken:
    """A REST access token as stored: never the token itself."""

    id: int
    name: str
    hint: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    @classmethod
    def from_row(cls, row: Any) -> AccessToken:
        return cls(id=row["id"], name=row["name"], hint=row["hint"], created_at=row["created_at"],
                   last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "hint": self.hint, "created_at": self.created_at,
                "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class Contact:
    id: str
    workspace_id: int
    role: str
    visitor_id: str | None
    external_id: str | None
    email: str | None
    name: str | None
    phone: str | None
    custom_attributes: dict[str, Any]
    message: str | None
    created_at: int
    updated_at: int
    last_seen_at: int | None
    contacted_at: int | None
    visitor_floor: int | None
    signed_up_at: int | None
    merged_into: str | None

    @classmethod
    def from_row(cls, row: Any) -> Contact:
        return cls(
            id=row["id"], workspace_id=row["workspace_id"], role=row["role"], visitor_id=row["visitor_id"],
            external_id=row["external_id"], email=row["email"], name=row["name"], phone=row["phone"],
            custom_attributes=json.loads(row["custom_attributes"] or "{}"), message=row["message"],
            created_at=row["created_at"], updated_at=row["updated_at"], last_seen_at=row["last_seen_at"],
            contacted_at=row["contacted_at"], visitor_floor=row["visitor_floor"],
            signed_up_at=row["signed_up_at"], merged_into=row["merged_into"])


@dataclass(frozen=True)
class NewEvent:
    """An event that passed validation and waits to be stored."""

    event_name: str
    created_at: int
    dedupe_key: str
    metadata: dict[str, Any]
    metadata_types: dict[str, str]
    dropped: list[dict[str, str]] = field(default_factory=list)
    renamed: bool = False  # its name had a '.' or '$' (stored with '-'): the sender is told (ingest.reported_drops)


@dataclass(frozen=True)
class BrowserNames:
    """Who may create new event names from a browser (server/store/name_policy.py): the request's client
    address and the workspace's limits."""

    address: str
    per_contact: int
    per_address: int
    allowed: frozenset[str] = frozenset()  # empty: any name
    users_verified: bool = False  # the workspace enforces identity verification: its users proved who they are


@dataclass
class AppendRequest:
    """One request's events, all for one contact. Without ``browser``, stored all-or-nothing; with it (the
    shim's batches), an event whose new name is refused is answered ``refused`` and the others are stored."""

    workspace_id: int
    contact_id: str
    source: str
    events: list[NewEvent]
    browser: BrowserNames | None = None


@dataclass(frozen=True)
class EventResult:
    status: str  # accepted | duplicate | dropped | refused
    reason: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    id: int
    contact_id: str
    event_name: str
    created_at: int
    role: str
    source: str
    metadata: dict[str, Any]
    metadata_types: dict[str, str]

    @classmethod
    def from_row(cls, row: Any) -> StoredEvent:
        return cls(id=row["id"], contact_id=row["contact_id"], event_name=row["name"],
                   created_at=row["created_at"], role=row["role"], source=row["source"],
                   metadata=json.loads(row["metadata"] or "{}"),
                   metadata_types=json.loads(row["metadata_types"] or "{}"))


@dataclass(frozen=True)
class EventName:
    id: int
    name: str
    description: str | None
    archived: bool
    event_count: int
    first_seen: int | None
    last_seen: int | None
    dropped_count: int
    dropped_metadata_count: int

    @classmethod
    def from_row(cls, row: Any) -> EventName:
        return cls(id=row["id"], name=row["name"], description=row["description"],
                   archived=bool(row["archived"]), event_count=row["event_count"],
                   first_seen=row["first_seen"], last_seen=row["last_seen"],
                   dropped_count=row["dropped_count"], dropped_metadata_count=row["dropped_metadata_count"])


@dataclass(frozen=True)
class Merge:
    id: int
    kind: str
    from_contact: str
    into_contact: str
    from_role: str
    reason: str
    proof: str
    events_since: int | None
    created_at: int
    undone_at: int | None

    @classmethod
    def from_row(cls, row: Any) -> Merge:
        return cls(id=row["id"], kind=row["kind"], from_contact=row["from_contact"],
                   into_contact=row["into_contact"], from_role=row["from_role"], reason=row["reason"],
                   proof=row["proof"], events_since=row["events_since"], created_at=row["created_at"],
                   undone_at=row["undone_at"])
