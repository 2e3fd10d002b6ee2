"""The official Python SDK, ``python-intercom`` 5.x, pointed at a real Trailmark server with ``base_url``.

The server is uvicorn on a free port of 127.0.0.1, in a thread, on a fresh store (each backend); only the
base URL differs from talking to Intercom. The SDK sends no ``Intercom-Version`` header (wire-captured in
docs/api.md), reads 202/200 empty bodies as success, and pages contacts with
``pages.next.starting_after``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from intercom import (
    CreateContactRequestWithExternalId,
    CreateContactRequestWithRole,
    CreateDataEventRequestWithId,
    CreateDataEventRequestWithUserId,
    CreateDataEventSummariesRequestEventSummaries,
    Intercom,
    MultipleFilterSearchRequest,
    SingleFilterSearchRequest,
    StartingAfterPaging,
    UnauthorizedError,
)
from intercom.core.api_error import ApiError

from .live_server import in_store, running_server


def _create_workspace(url: str) -> str:
    async def create(store: Any) -> str:
        return (await store.create_workspace("SDK")).access_token

    return in_store(url, create)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The SDK's HTTP client, closed after the test (the SDK never closes the one it makes itself)."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def server(store_url: str) -> Iterator[tuple[str, str]]:
    """``(base_url, access token)`` of a real server; stopped (lifespan closed) afterwards."""
    token = _create_workspace(store_url)
    with running_server(store_url, "trailmark-sdk-server") as (base_url, _stop):
        yield base_url, token


def test_python_sdk_events_contacts_and_merge(server, http):
    base_url, token = server
    client = Intercom(token=token, base_url=base_url, httpx_client=http)
    now = int(time.time())

    user: Any = client.contacts.create(request=CreateContactRequestWithExternalId(
        # The SDK's model declares no email but sends extra fields (extra="allow").
        external_id="314159", email="frodo.baggins@example.com", name="Frodo"))  # type: ignore[call-arg]
    assert user.type == "contact" and user.role == "user" and user.external_id == "314159"

    # An event with string metadata, through the SDK's typed request (its metadata is Dict[str, str]) ...
    assert client.events.create(request=CreateDataEventRequestWithUserId(
        event_name="invited-friend", created_at=now - 60, user_id="314159",
        metadata={"invite_code": "ADDAFRIEND", "invitee_email": "pi@example.org"})) is None
    # ... and one with every kind of metadata the API documents, as a plain dict (passed through unchanged).
    metadata = {"load": 3.67, "contact_date": 1392036272, "article": "https://example.org/ab1de.html",
                "link": {"url": "https://example.org/ab1de.html", "value": "abides"},
                "price": {"amount": 34999, "currency": "eur"}}
    client.events.create(request={"event_name": "Updated.Plan", "created_at": now - 30, "user_id": "314159",
                                  "metadata": metadata})

    listed: Any = client.events.list(type="user", user_id="314159", per_page=5)
    assert listed.type == "event.list"
    events = listed.events
    assert [e.event_name for e in events] == ["updated-plan", "invited-friend"]
    assert events[1].metadata == {"invite_code": "ADDAFRIEND", "invitee_email": "pi@example.org"}
    assert events[0].metadata == metadata and events[0].intercom_user_id == user.id
    assert listed.pages["since"].startswith(base_url + "/events?")  # an extra field: kept as sent

    client.events.summaries(user_id="314159", event_summaries=CreateDataEventSummariesRequestEventSummaries(
        event_name="invited-friend", count=4, first=now - 86400 * 400, last=now - 86400 * 300))
    summary: Any = client.events.list(type="user", user_id="314159", summary=True)
    assert summary.type == "event.summary"
    counts = {e.name: e.count for e in summary.events}
    assert counts == {"invited-friend": 5, "updated-plan": 1}

    # A lead tracks an event (leads are named by id), then is merged into the user.
    lead: Any = client.contacts.create(request=CreateContactRequestWithRole(  # email: an extra, as above
        role="lead", email="frodo@shire.example"))  # type: ignore[call-arg]
    assert lead.role == "lead"
    client.events.create(request=CreateDataEventRequestWithId(event_name="asked-question", created_at=now - 10,
                                                             id=lead.id, metadata={"topic": "pricing"}))
    merged: Any = client.contacts.merge_lead_in_user(lead_id=lead.id, contact_id=user.id)
    assert merged.id == user.id and merged.role == "user"
    after = client.events.list(type="user", intercom_user_id=user.id, per_page=10)
    assert [e.event_name for e in after.events] == ["asked-question", "updated-plan", "invited-friend"]
    with pytest.raises(ApiError) as gone:
        client.contacts.find(lead.id)
    assert gone.value.status_code == 404 and gone.value.body["errors"][0]["code"] == "not_found"

    # Find, search, update and list, as the SDK pages them.
    found: Any = client.contacts.show_contact_by_external_id("314159")
    assert found.id == user.id
    hits = list(client.contacts.search(query=MultipleFilterSearchRequest(operator="AND", value=[
        SingleFilterSearchRequest(field="role", operator="=", value="user"),
        SingleFilterSearchRequest(field="email", operator="~", value="baggins")]),
        pagination=StartingAfterPaging(per_page=5)))
    assert [c.id for c in hits] == [user.id]
    updated: Any = client.contacts.update(user.id, custom_attributes={"plan": "pro"}, name="Frodo B.")
    assert updated.name == "Frodo B." and updated.custom_attributes == {"plan": "pro"}
    for i in range(4):
        client.contacts.create(request=CreateContactRequestWithExternalId(external_id=f"extra-{i}"))
    everyone = list(client.contacts.list(per_page=2))
    assert len(everyone) == 5 and len({c.id for c in everyone}) == 5

    deleted: Any = client.contacts.delete(user.id)
    assert deleted.deleted is True and deleted.id == user.id


def test_python_sdk_errors(server, http):
    base_url, token = server
    with pytest.raises(UnauthorizedError) as denied:
        Intercom(token="not-a-token", base_url=base_url, httpx_client=http).contacts.list()
    assert denied.value.status_code == 401
    # A trailing slash is joined the same way.
    client = Intercom(token=token, base_url=base_url + "/", httpx_client=http)
    with pytest.raises(ApiError) as missing:
        client.events.create(request=CreateDataEventRequestWithUserId(
            event_name="x", created_at=int(time.time()), user_id="nobody"))
    assert missing.value.status_code == 404
    assert missing.value.body["errors"][0]["message"] == "User Not Found"
    with pytest.raises(ApiError) as conflict:
        for _ in range(2):
            client.contacts.create(request=CreateContactRequestWithExternalId(external_id="twice"))
    assert conflict.value.status_code == 409
    response = client.contacts.with_raw_response.find(client.contacts.show_contact_by_external_id("twice").id)
    assert response.headers["x-ratelimit-limit"] == "1000"
