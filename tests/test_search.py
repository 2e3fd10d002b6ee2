"""Search (experience issue): contacts by email, name, user_id, visitor id or phone, a merged-away contact found
through the one holding it; a contact's timeline filtered by event name; the event list sorted by count and by
last seen."""

from __future__ import annotations

import time
from typing import Any

from trailmark.store.models import AppendRequest, NewEvent

from .test_admin import sign_in


async def seed(h: Any) -> dict[str, Any]:
    ws = h.workspace
    ada = await h.store.create_contact(ws, "user", external_id="u-ada", email="Ada@Example.com", name="Ada Lovelace")
    grace = await h.store.create_contact(ws, "lead", email="grace@navy.example", name="Grace Hopper")
    await h.store.update_contact_traits(ws, grace.id, phone="+44 20 7946 0000")
    visitor = await h.store.create_visitor(ws)
    await h.store.identify_user(ws, visitor.id, user_id="u-ada", email=None, reason="test", proof="user_hash")
    now = int(time.time())
    await h.store.append_events(AppendRequest(ws.id, ada.id, "rest", [
        NewEvent("upload-complete", now - 30, "k1", {}, {}), NewEvent("viewed-pricing", now - 20, "k2", {}, {}),
        NewEvent("upload-complete", now - 10, "k3", {}, {})]))
    await h.store.append_events(AppendRequest(ws.id, grace.id, "rest", [NewEvent("viewed-pricing", now - 5, "k4",
                                                                                    {}, {})]))
    return {"ada": ada, "grace": grace, "visitor": visitor}


async def test_contacts_are_found_by_what_a_teammate_knows(harness):
    h = harness
    people = await seed(h)
    search = h.store.search.search
    for query in ("ada@example.com", "ADA@", "lovelace", "u-ada", people["visitor"].visitor_id, people["ada"].id):
        assert [c.id for c in await search(h.workspace, query)] == [people["ada"].id], query
    assert [c.id for c in await search(h.workspace, "7946")] == [people["grace"].id]
    assert {c.id for c in await search(h.workspace, "example")} == {people["ada"].id, people["grace"].id}
    assert await search(h.workspace, "%") == [] and await search(h.workspace, "   ") == []
    other = await h.store.create_workspace("Other")
    assert await search(other, "ada") == []


async def test_the_admin_search_box_timeline_filter_and_event_sorting(harness):
    h = harness
    people = await seed(h)
    await sign_in(h)
    one = await h.client.get("/admin/search", params={"q": "grace@navy"})
    assert one.status_code == 303 and one.headers["location"] == f"/admin/contacts/{people['grace'].id}"
    many = await h.client.get("/admin/search", params={"q": "example"})
    assert many.status_code == 200 and "Ada Lovelace" in many.text and "Grace Hopper" in many.text
    none = await h.client.get("/admin/search", params={"q": "nobody-like-this"})
    assert "No contact matches" in none.text
    # The header's box keeps what was searched on the results page, and holds nothing elsewhere (the contact
    # list's own filters once leaked into it as "ContactQuery(...)").
    assert 'id="top-q" name="q" type="search" placeholder="Search contacts" value="nobody-like-this"' in none.text
    listing = await h.client.get("/admin/contacts", params={"role": "lead"})
    assert 'placeholder="Search contacts" value=""' in listing.text and "ContactQuery" not in listing.text
    page = await h.client.get(f"/admin/contacts/{people['ada'].id}", params={"event": "upload-complete"})
    timeline = page.text.split('class="timeline"')[1]
    assert timeline.count('class="event"') == 2 and "Viewed pricing" not in timeline
    by_count = (await h.client.get("/admin/events", params={"sort": "count"})).text
    assert by_count.index("Upload complete") < by_count.index("Viewed pricing")
    by_last = (await h.client.get("/admin/events", params={"sort": "last_seen"})).text
    assert by_last.index("Viewed pricing") < by_last.index("Upload complete")
