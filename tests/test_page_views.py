"""Page views (server/page_views.py, server/store/page_views.py): sent in the shim's events batch, stored once
per client id, apart from events (no event name, not in REST ``GET /events``), on the admin timeline, in the
export and the purge, filterable ("visited a URL containing …") in the contact list and message audiences, and
switchable off per workspace."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from trailmark import cli
from trailmark.admin.render import human_date
from trailmark.admin.settings_form import read_settings
from trailmark.admin.timeline import EVENT, PAGE_VIEW, Cursor, parse_cursor
from trailmark.domain_errors import UnknownIdentity
from trailmark.messages.document import DocumentInvalid, parse_message, to_document
from trailmark.retention import purge_workspace
from trailmark.store import SQLStore, open_store
from trailmark.store.admin_reads import EventFilter
from trailmark.store.db import SQLiteDatabase
from trailmark.store.models import AppendRequest, NewEvent
from trailmark.store.page_views import NewPageView

from .test_admin import sign_in

DAY = 86400


def view(client_id: str, url: Any = "https://shop.example/pricing", title: Any = "Pricing", referrer: Any = None,
         **extra: Any) -> dict[str, Any]:
    """A page view as the shim sends it (any JSON in its fields, for the refusal tests)."""
    return {"id": client_id, "type": "page_view", "url": url, "title": title, "referrer": referrer, **extra}


async def stored_views(h: Any) -> list[Any]:
    async with h.store.db.read() as conn:
        return list(await conn.fetch_all("SELECT * FROM page_views WHERE workspace_id = ? ORDER BY id",
                                         (h.workspace.id,)))


async def add_views(h: Any, contact_id: str, *views: tuple[str, int]) -> None:
    """Store page views ``(url, created_at)`` as ingest does."""
    await h.store.append_page_views(h.workspace, contact_id, [
        NewPageView(url, f"Title of {url}", None, t, f"k:{contact_id}:{url}:{t}") for url, t in views])


# ------------------------------------------------------------------ ingest
async def test_a_page_view_is_stored_once_and_is_not_an_event(harness):
    h = harness
    me = await h.visitor()
    batch = [view("v1", referrer="https://search.example/"), {"id": "e1", "event_name": "upload-complete"}]
    r = await h.track(me["session"], *batch)
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [{"id": "v1", "status": "accepted", "type": "page_view"},
                                   {"id": "e1", "status": "accepted"}]
    # The shim resends what it did not see acknowledged: counted once.
    again = await h.track(me["session"], *batch)
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    rows = await stored_views(h)
    assert [(r["url"], r["title"], r["referrer"], r["role"], r["contact_id"]) for r in rows] == [
        ("https://shop.example/pricing", "Pricing", "https://search.example/", "visitor", me["contact"]["id"])]
    # Not an event: one event stored, one event name (the page view takes none of the 120).
    assert await h.event_count() == 1
    assert [n.name for n in await h.store.event_names(h.workspace)] == ["upload-complete"]
    # REST GET /events does not list page views, as Intercom does not.
    listed = await h.client.get("/events", params={"type": "user", "intercom_user_id": me["contact"]["id"]},
                                headers=h.auth)
    assert listed.status_code == 200, listed.text
    assert [e["event_name"] for e in listed.json()["events"]] == ["upload-complete"]


async def test_a_batch_of_page_views_only(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], view("a", url="https://shop.example/"), view("b", title=None))
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]
    assert [(v["url"], v["title"]) for v in await stored_views(h)] == [
        ("https://shop.example/", "Pricing"), ("https://shop.example/pricing", None)]
    assert await h.event_count() == 0


@pytest.mark.parametrize("entry, field", [
    (view("x", url=None), "events[1].url"),
    (view("x", url=""), "events[1].url"),
    (view("x", url=["https://a.example"]), "events[1].url"),
    (view("x", title=5), "events[1].title"),
    (view("x", referrer={"a": 1}), "events[1].referrer"),
    (view("x", url="https://a.example/\x00"), "events[1].url"),
    (view("x", created_at="yesterday"), "events[1].created_at"),
    (view("x", created_at=int(time.time()) + 3 * DAY), "events[1].created_at"),
])
async def test_a_malformed_page_view_is_a_400_and_nothing_is_stored(harness, entry, field):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], {"id": "e1", "event_name": "upload-complete"}, entry)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == field
    assert await stored_views(h) == [] and await h.event_count() == 0


async def test_long_urls_and_titles_are_cut_not_refused(harness):
    h = harness
    me = await h.visitor()
    r = await h.track(me["session"], view("v", url="https://a.example/" + "x" * 5000, title="t" * 1000,
                                          referrer="https://b.example/" + "y" * 5000))
    assert r.status_code == 200, r.text
    (row,) = await stored_views(h)
    assert (len(row["url"]), len(row["title"]), len(row["referrer"])) == (2048, 255, 2048)


async def test_a_forged_session_stores_no_page_view(harness):
    h = harness
    r = await h.track("forged", view("v"))
    assert r.status_code == 401
    assert await stored_views(h) == []


async def test_switched_off_the_server_drops_them_and_the_ping_says_so(make_harness):
    async with make_harness() as h:
        assert (await h.visitor())["page_views"] is True
    async with make_harness(page_views=False) as h:
        me = await h.visitor()
        assert me["page_views"] is False
        r = await h.track(me["session"], view("v1"), {"id": "e1", "event_name": "signed-up"})
        assert r.status_code == 200
        assert r.json()["results"] == [
            {"id": "v1", "status": "dropped", "type": "page_view",
             "reason": "page views are switched off for this workspace"},
            {"id": "e1", "status": "accepted"}]
        assert await stored_views(h) == [] and await h.event_count() == 1


async def test_the_switch_from_the_cli_and_the_settings_form(store_url: str, capsys: Any) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        ws = await store.create_workspace("Shop")
        assert ws.page_views is True
        assert not read_settings(ws, {"page_views": "on"}).changes.get("page_views", False)
        assert read_settings(ws, {}).changes["page_views"] is False  # an unticked box is off
    finally:
        await store.close()
    assert await asyncio.to_thread(cli.main, ["workspace", "set", "--no-page-views", "--database", store_url]) == 0
    assert "page views:            off" in capsys.readouterr().out
    store = open_store(store_url)
    await store.open()
    try:
        fresh = await store.workspace_by_app_id(ws.app_id, cached=False)
        assert fresh is not None and fresh.page_views is False
        assert fresh.settings_dict()["page_views"] is False
    finally:
        await store.close()


# ------------------------------------------------------------------ the admin timeline
def test_timeline_cursors_round_trip_and_refuse_junk():
    for cursor in (Cursor(1700000000, EVENT, 42), Cursor(1700000000, PAGE_VIEW, 7)):
        assert parse_cursor(str(cursor)) == cursor
    for junk in (None, "", "1:2:3", "x:1", "1:pv:x", "1:pv", "9" * 30 + ":1"):
        assert parse_cursor(junk) is None


async def test_the_timeline_shows_page_views_among_events_and_pages_through_both(harness):
    h = await _signed_in(harness)
    me = await h.visitor()
    cid = me["contact"]["id"]
    now = int(time.time())
    # 60 page views and 60 events, interleaved, half of them in the same second as a page view: 120 items over
    # three pages of 50, newest first; within one second the event comes first.
    expected = []
    for i in range(60):
        expected += [(now - 1000 + i * 10, 0, f"view:https://shop.example/p{i}"),
                     (now - 1000 + i * 10 + (i % 2) * 5, 1, f"event:step-{i}")]
    await add_views(h, cid, *[(f"https://shop.example/p{i}", now - 1000 + i * 10) for i in range(60)])
    await h.store.append_events(AppendRequest(h.workspace.id, cid, "js", [
        NewEvent(f"step-{i}", now - 1000 + i * 10 + (i % 2) * 5, f"e{i}", {}, {}) for i in range(60)]))
    seen: list[str] = []
    path: str | None = f"/admin/contacts/{cid}"
    pages = 0
    while path is not None:
        page = (await h.client.get(path)).text
        seen += _items(page)
        path, pages = _older(page), pages + 1
    assert pages == 3
    assert seen == [label for _, _, label in sorted(expected, reverse=True)]
    page = (await h.client.get(f"/admin/contacts/{cid}")).text
    assert "Page view" in page and "Title of https://shop.example/p59" in page
    assert 'href="https://shop.example/p59"' in page


async def test_an_unsafe_page_url_is_shown_but_never_linked(harness):
    h = await _signed_in(harness)
    me = await h.visitor()
    r = await h.track(me["session"], view("v", url="javascript:alert(1)", title="<b>x</b>"))
    assert r.status_code == 200
    page = (await h.client.get(f"/admin/contacts/{me['contact']['id']}")).text
    assert "javascript:alert(1)" in page and 'href="javascript:' not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


async def test_a_visitors_expiry_date_counts_its_page_views(harness):
    h = await _signed_in(harness)
    me = await h.visitor()
    seen = int(time.time()) - 30 * DAY
    await add_views(h, me["contact"]["id"], ("https://shop.example/", seen))
    page = (await h.client.get(f"/admin/contacts/{me['contact']['id']}")).text
    assert "The oldest expire on" in page and human_date(seen + 90 * DAY, with_time=False) in page


async def _signed_in(h: Any) -> Any:
    r = await sign_in(h)
    assert r.status_code == 303
    return h


def _items(page: str) -> list[str]:
    """The timeline's rows in order: ``view:<url>`` or ``event:<name>``."""
    import re

    out = []
    for m in re.finditer(r'<li class="event( page-view)?">(.*?)</li>', page, re.S):
        if m.group(1):
            found = re.search(r"<dt>URL</dt><dd[^>]*>(?:<a [^>]*>)?([^<]+)", m.group(2))
        else:
            found = re.search(r'class="event-name"[^>]* title="([^"]+)"', m.group(2))
        assert found, m.group(2)
        out.append(("view:" if m.group(1) else "event:") + found.group(1))
    return out


def _older(page: str) -> str | None:
    import html
    import re

    m = re.search(r'href="(/admin/contacts/[^"]+\?before=[^"]+)" class="button" rel="next"', page)
    return html.unescape(m.group(1)) if m else None


# ------------------------------------------------------------------ export, erase, purge
async def test_export_carries_page_views_and_erase_removes_them(harness):
    h = harness
    me = await h.visitor()
    assert (await h.track(me["session"], view("v1", referrer="https://ref.example/"))).status_code == 200
    data = await h.store.contact_export(h.workspace, me["contact"]["id"])
    assert [(v["url"], v["title"], v["referrer"], v["role"], v["in_history"]) for v in data["page_views"]] == [
        ("https://shop.example/pricing", "Pricing", "https://ref.example/", "visitor", True)]
    assert data["events"] == []
    assert await h.store.delete_contact(h.workspace, me["contact"]["id"])
    assert await stored_views(h) == []


async def test_the_purge_deletes_expired_visitor_page_views_and_then_the_visitor(harness):
    h = harness
    now = int(time.time())
    old, recent, lead = await h.visitor(), await h.visitor(), await h.visitor()
    await add_views(h, old["contact"]["id"], ("https://a.example/old", now - 200 * DAY))
    await add_views(h, recent["contact"]["id"], ("https://a.example/new", now - DAY))
    await add_views(h, lead["contact"]["id"], ("https://a.example/lead", now - 60 * DAY))
    await h.store.convert_to_lead(h.workspace, lead["contact"]["id"], email="l@example.com", reason="t", proof="t")
    await add_views(h, lead["contact"]["id"], ("https://a.example/lead-old", now - 300 * DAY))
    # 'recent' was last seen long ago, but its page view is recent: it is not an empty visitor.
    async def unseen(contact_id: str) -> None:
        async def job(conn: Any) -> None:
            await conn.execute("UPDATE contacts SET last_seen_at = ? WHERE id = ?", (now - 200 * DAY, contact_id))
        await h.store.db.write(job)
    await unseen(recent["contact"]["id"])
    from trailmark.retention import cutoff_for
    assert await h.store.count_expired(h.workspace, cutoff_for(h.workspace)) == (1, 0)
    assert await purge_workspace(h.store, h.workspace) == (1, 0)
    assert sorted(v["url"] for v in await stored_views(h)) == [
        "https://a.example/lead", "https://a.example/lead-old", "https://a.example/new"]
    assert await h.store.get_contact(h.workspace, recent["contact"]["id"]) is not None
    # 100 days on: 'recent''s page view expires, then both visitors, now empty and unseen, go; the lead stays.
    assert await purge_workspace(h.store, h.workspace, now=now + 100 * DAY) == (1, 2)
    assert await h.store.get_contact(h.workspace, old["contact"]["id"]) is None
    assert await h.store.get_contact(h.workspace, recent["contact"]["id"]) is None
    assert len(await stored_views(h)) == 2


# ------------------------------------------------------------------ "visited a URL containing …"
async def _people(h: Any) -> dict[str, str]:
    """Ada viewed /pricing (as a visitor merged into her user), Bob viewed /blog, Cy viewed nothing."""
    now = int(time.time())
    ada = await h.store.create_contact(h.workspace, "user", external_id="ada")
    ada_visitor = await h.store.create_visitor(h.workspace)
    await add_views(h, ada_visitor.id, ("https://shop.example/Pricing?plan=pro", now - 100))
    await h.store.merge_contacts(h.workspace, ada_visitor.id, ada.id, reason="t", proof="t")
    bob = await h.store.create_contact(h.workspace, "user", external_id="bob")
    await add_views(h, bob.id, ("https://shop.example/blog?about=pricing_100%", now - 50))
    cy = await h.store.create_contact(h.workspace, "lead", email="cy@example.com")
    return {"ada": ada.id, "bob": bob.id, "cy": cy.id}


async def test_the_contact_list_filters_on_a_visited_url(harness):
    h = harness
    ids = await _people(h)
    names = {v: k for k, v in ids.items()}

    async def who(text: str) -> list[str]:
        page = await h.store.admin_contacts(h.workspace, filters=[EventFilter.visited(text)])
        return sorted(names[c.contact.id] for c in page.contacts)

    assert await who("/pricing") == ["ada"]  # case ignored; Ada's merged visitor counts
    assert await who("pricing") == ["ada", "bob"]
    assert await who("_100%") == ["bob"]  # LIKE's wildcards are literal here
    assert await who("0%") == ["bob"]
    assert await who("1%") == []  # "100%" would match if % were a wildcard
    assert await who("/checkout") == []
    page = await h.store.admin_contacts(h.workspace, filters=[EventFilter.visited("pricing")])
    assert {names[c.contact.id]: c.stats[0][0] for c in page.contacts} == {"ada": 1, "bob": 1}

    await _signed_in(h)
    listing = (await h.client.get("/admin/contacts", params={"url": "/PRICING"})).text
    assert "visited a URL containing “/PRICING”" in listing
    assert f"/admin/contacts/{ids['ada']}" in listing and f"/admin/contacts/{ids['bob']}" not in listing


async def test_a_message_audience_filters_on_a_visited_url(harness):
    h = harness
    ids = await _people(h)
    doc = {"key": "pricing-help", "kind": "banner", "trigger": {"event": "opened-app"},
           "audience": {"events": [{"op": "visited_url", "url": "/pricing"}]}, "content": {"text": "Questions?"}}
    message = parse_message(doc)
    (f,) = message.audience.events
    assert f == EventFilter.visited("/pricing")
    normalised = to_document(message)
    assert normalised["audience"]["events"] == [{"op": "visited_url", "url": "/pricing"}]
    assert parse_message(normalised).audience == message.audience  # the normalised document applies back
    for who, expected in (("ada", [True]), ("bob", [False]), ("cy", [False])):
        assert await h.store.messages.event_filters_match(h.workspace, ids[who], message.audience.events) == expected
    n, rows = await h.store.messages.audience_contacts(h.workspace, ["user", "lead"], message.audience.events,
                                                       count_only=False)
    assert n == 1 and [c.id for c in rows] == [ids["ada"]]
    for bad in ({"op": "visited_url"}, {"op": "visited_url", "url": ""},
                {"op": "visited_url", "url": "/x", "event": "signed-up"}, {"op": "done", "event": "a", "url": "/x"}):
        with pytest.raises(DocumentInvalid):
            parse_message({**doc, "audience": {"events": [bad]}})


async def test_a_batch_of_events_and_page_views_is_one_transaction(harness, monkeypatch):
    """The shim sends a page's view with its events: both are stored under one commit, not two."""
    session = (await harness.visitor())["session"]
    db: Any = harness.store.db
    batches: list[int] = []
    if isinstance(db, SQLiteDatabase):  # one transaction per batch on the writer thread
        run_batch = db._run_batch

        def counted(batch: list[Any]) -> Any:
            batches.append(len(batch))
            return run_batch(batch)

        monkeypatch.setattr(db, "_run_batch", counted)
    else:  # PostgreSQL: one transaction per committed batch
        commit_batch = db._commit_batch

        async def counted_there(batch: list[Any]) -> None:
            batches.append(len(batch))
            await commit_batch(batch)

        monkeypatch.setattr(db, "_commit_batch", counted_there)
    response = await harness.track(session, {"id": "e1", "event_name": "opened-pricing"},
                                   {"id": "v1", "type": "page_view", "url": "https://shop.example/pricing"})
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert batches == [2]  # the events' job and the page views' job, one transaction


async def test_page_views_run_before_the_events_in_a_shared_transaction(harness, monkeypatch):
    """Whatever order requests arrive in, a batch writes page views before events: two batches in flight at once
    (PostgreSQL) take their row locks in one order and cannot deadlock on a resent page view, and the hot event
    counters are locked last (review finding)."""
    from trailmark.store import events as events_module
    from trailmark.store import page_views as page_views_module

    ran: list[str] = []
    append_group, page_view_group = events_module._append_group, page_views_module._append_page_view_group

    async def events_first(conn: Any, items: list[Any]) -> list[Any]:
        ran.append("events")
        return await append_group(conn, items)

    async def views_then(conn: Any, items: list[Any]) -> list[Any]:
        ran.append("page views")
        return await page_view_group(conn, items)

    monkeypatch.setattr(events_module, "_append_group", events_first)
    monkeypatch.setattr(page_views_module, "_append_page_view_group", views_then)
    ws, store = harness.workspace, harness.store
    contact = await store.create_visitor(ws)
    t = int(time.time())
    stored, viewed = await asyncio.gather(  # the events are queued first
        store.append_events(AppendRequest(ws.id, contact.id, "js", [NewEvent("opened", t, "c:e1", {}, {})])),
        store.append_page_views(ws, contact.id, [NewPageView("https://shop.example/", None, None, t, "c:v1")]))
    assert [r.status for r in stored] == ["accepted"] and viewed == ["accepted"]
    assert ran == ["page views", "events"]


async def test_requests_queued_together_are_looked_up_and_stored_together(store):
    """The page-views writer takes a group of requests at once (one contact look-up, one insert for all): each
    request still gets its own statuses; a key sent twice in the group (a resend racing its original) is
    accepted once; a merged visitor's views land on the survivor; an unknown contact, or one of another
    workspace, is refused alone."""
    ws, other_ws = await store.create_workspace("Views"), await store.create_workspace("Other")
    now = int(time.time())
    visitor, merged = (await store.create_visitor(ws)).id, (await store.create_visitor(ws)).id
    user = (await store.identify_user(ws, (await store.create_visitor(ws)).id, user_id="u", email=None,
                                      reason="t", proof="t")).id
    await store.merge_contacts(ws, merged, user, reason="t", proof="t")
    stranger = (await store.create_visitor(other_ws)).id

    def views(*keys: str) -> list[NewPageView]:
        return [NewPageView(f"https://site.example/{k}", None, None, now, k) for k in keys]

    results = await asyncio.gather(
        store.append_page_views(ws, visitor, views("a", "b")), store.append_page_views(ws, visitor, views("a")),
        store.append_page_views(ws, merged, views("m")), store.append_page_views(ws, "no-such-contact", views("x")),
        store.append_page_views(ws, stranger, views("s")), store.append_page_views(ws, visitor, views("c")),
        return_exceptions=True)
    assert list(results[:3]) == [["accepted", "accepted"], ["duplicate"], ["accepted"]]
    assert isinstance(results[3], UnknownIdentity) and isinstance(results[4], UnknownIdentity)
    assert results[5] == ["accepted"]
    async with store.db.read() as conn:
        rows = await conn.fetch_all("SELECT contact_id, dedupe_key, role FROM page_views ORDER BY dedupe_key")
    assert [(r["dedupe_key"], r["contact_id"], r["role"]) for r in rows] == [
        ("a", visitor, "visitor"), ("b", visitor, "visitor"), ("c", visitor, "visitor"), ("m", user, "user")]


async def test_a_group_across_workspaces_and_insert_chunks_claims_each_key_once(store: SQLStore) -> None:
    """One group: the same key in two workspaces (both accepted), a key sent twice straddling the 300-row chunk
    boundary (the first claims it), an unknown contact between them, and > 500 contacts (the look-up's chunks)."""
    ws, other_ws = await store.create_workspace("A"), await store.create_workspace("B")
    now = int(time.time())
    a, b = (await store.create_visitor(ws)).id, (await store.create_visitor(other_ws)).id
    many = [(await store.create_visitor(ws)).id for _ in range(510)]

    def views(prefix: str, n: int) -> list[NewPageView]:
        return [NewPageView(f"https://x/{prefix}{j}", None, None, now, f"{prefix}{j}") for j in range(n)]

    calls = [store.append_page_views(ws, a, views("k", 299) + views("z", 1)),  # rows 0..299: z0 is row 299
             store.append_page_views(other_ws, b, views("k", 1)),
             store.append_page_views(ws, "nobody", views("z", 1)),
             store.append_page_views(ws, a, views("z", 1) + views("y", 1)),  # z0 again, in the next chunk
             *(store.append_page_views(ws, c, [NewPageView("https://x/", None, None, now, f"m-{c}")]) for c in many)]
    got = await asyncio.gather(*calls, return_exceptions=True)
    assert got[0] == ["accepted"] * 300
    assert got[1] == ["accepted"]
    assert isinstance(got[2], UnknownIdentity)
    assert got[3] == ["duplicate", "accepted"]
    assert all(g == ["accepted"] for g in got[4:])


async def test_events_refuse_a_contact_of_another_workspace_as_page_views_do(store: SQLStore) -> None:
    """Every writer refuses a contact of another workspace (one look-up, store/holders.py, gives each contact's
    workspace); ingest used not to check, storing workspace A's events on workspace B's contact."""
    ws, other_ws = await store.create_workspace("A"), await store.create_workspace("B")
    stranger = (await store.create_visitor(other_ws)).id
    now = int(time.time())
    with pytest.raises(UnknownIdentity):
        await store.append_page_views(ws, stranger, [NewPageView("https://x/", None, None, now, "p")])
    with pytest.raises(UnknownIdentity):
        await store.append_events(AppendRequest(ws.id, stranger, "js", [NewEvent("viewed", now, "e", {}, {})]))
    from trailmark.store.import_writer import ImportEvent, store_import_chunk

    [outcome] = await store_import_chunk(store, ws.id, "import", [(stranger, [ImportEvent("viewed", now, "i", None,
                                                                                          None)])])
    assert isinstance(outcome, UnknownIdentity)
    assert await store.count_events(ws) == 0 and await store.count_events(other_ws) == 0
