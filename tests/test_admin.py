"""The admin pages (server/admin/): sign-in and CSRF, the contact list's event filters, the profile's
timeline rendered by metadata type, escaping of tracked data, event settings, convert and undo.

Every test runs on each store backend (the ``store_url`` fixture behind ``harness``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import io
import re
import stat
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from trailmark import cli
from trailmark.admin import auth
from trailmark.admin import routes as admin_routes
from trailmark.admin.charts import daily_chart, nice_max
from trailmark.admin.render import (
    format_money,
    human_date,
    safe_url,
    show_value,
    stripe_url,
)
from trailmark.admin.throttle import SignInThrottle
from trailmark.app import create_app
from trailmark.metadata import validate_metadata
from trailmark.settings import Settings
from trailmark.store import admin_reads, open_store
from trailmark.store.admin_reads import EventFilter
from trailmark.store.models import AppendRequest, NewEvent

DAY = 86400
EMAIL, PASSWORD = "ada@example.com", "correct horse battery"
# One scrypt hash for the whole module: hashing costs ~0.3 s, and sign-in verifies it anyway.
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(auth.hash_password(PASSWORD))
    return _HASH[0]


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(h: Any, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    await h.store.create_teammate(EMAIL, password_hash())
    form = await h.client.get("/admin/login")
    return await h.client.post("/admin/login", data={"csrf": csrf_of(form.text), "email": email,
                                                     "password": password, "next": "/admin/contacts"})


@pytest.fixture
async def admin(harness: Any) -> AsyncIterator[Any]:
    """A harness whose client is signed in as a teammate."""
    r = await sign_in(harness)
    assert r.status_code == 303 and r.headers["location"] == "/admin/contacts", r.text
    yield harness


async def csrf(h: Any, path: str = "/admin/contacts") -> str:
    return csrf_of((await h.client.get(path)).text)


_keys = iter(range(10**9))


async def track(h: Any, contact_id: str, name: str, created_at: int | None = None,
                metadata: dict[str, Any] | None = None, types: dict[str, str] | None = None) -> None:
    """Store one event as ingest would (metadata typed by the real rules unless ``types`` forces them)."""
    clean = validate_metadata(metadata or {})
    values, kinds = (metadata or {}, types) if types is not None else (clean.values, clean.types)
    results = await h.store.append_events(AppendRequest(h.workspace.id, contact_id, "js", [NewEvent(
        event_name=name, created_at=created_at or int(time.time()), dedupe_key=f"k{next(_keys)}",
        metadata=values, metadata_types=kinds, dropped=[d.as_dict() for d in clean.dropped])]))
    assert results[0].status in ("accepted", "dropped"), results


# ------------------------------------------------------------------------------------------ sign-in
async def test_every_admin_page_needs_sign_in(harness: Any) -> None:
    h = harness
    visitor = await h.store.create_visitor(h.workspace)
    for path in ("/admin/contacts", "/admin/contacts?role=lead", f"/admin/contacts/{visitor.id}", "/admin/events",
                 "/admin/events/signed-up", "/admin/nope"):
        r = await h.client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/admin/login?next=" + quote(path, safe=""), path
    r = await h.client.post(f"/admin/contacts/{visitor.id}/convert", data={"csrf": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert (await h.store.get_contact(h.workspace, visitor.id)).role == "visitor"
    assert (await h.client.get("/admin")).headers["location"] == "/admin/contacts"


async def test_sign_in_refuses_a_wrong_password_and_an_unknown_email(harness: Any) -> None:
    h = harness
    r = await sign_in(h, password="wrong password!")
    assert r.status_code == 401 and "Wrong email or password" in r.text
    r = await sign_in(h, email="nobody@example.com")
    assert r.status_code == 401
    assert (await h.client.get("/admin/contacts")).status_code == 303  # still signed out
    r = await sign_in(h, email="  ADA@example.com ")  # emails are case-insensitive
    assert r.status_code == 303
    page = await h.client.get("/admin/contacts")
    assert page.status_code == 200 and EMAIL in page.text


async def test_session_cookie_is_httponly_lax_and_signed(harness: Any) -> None:
    h = harness
    r = await sign_in(h)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/admin" in cookie
    # A tampered cookie is no session at all.
    value = h.client.cookies.get(auth.COOKIE)
    h.client.cookies.set(auth.COOKIE, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"), path="/admin")
    assert (await h.client.get("/admin/contacts")).status_code == 303


async def test_sign_in_form_needs_its_csrf_token(harness: Any) -> None:
    h = harness
    await h.store.create_teammate(EMAIL, password_hash())
    await h.client.get("/admin/login")
    r = await h.client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 403
    r = await h.client.post("/admin/login", data={"csrf": "forged", "email": EMAIL, "password": PASSWORD})
    assert r.status_code == 403
    assert (await h.client.get("/admin/contacts")).status_code == 303


async def test_sign_out_and_no_open_redirect(admin: Any) -> None:
    h = admin
    token = await csrf(h)
    r = await h.client.post("/admin/logout", data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert (await h.client.get("/admin/contacts")).status_code == 303
    form = await h.client.get("/admin/login?next=//evil.example/admin/")
    assert 'value="/admin/contacts"' in form.text
    r = await h.client.post("/admin/login", data={"csrf": csrf_of(form.text), "email": EMAIL, "password": PASSWORD,
                                                  "next": "https://evil.example/"})
    assert r.headers["location"] == "/admin/contacts"


async def test_a_new_password_ends_old_sessions(admin: Any) -> None:
    h = admin
    await h.store.create_teammate(EMAIL, auth.hash_password("another long password"))
    assert (await h.client.get("/admin/contacts")).status_code == 303


async def test_signing_out_revokes_copies_of_the_session_cookie(admin: Any) -> None:
    """Trust finding: a copied session cookie kept working for 14 days after its teammate signed out."""
    h = admin
    copied = dict(h.client.cookies)
    async with client_from(h, "203.0.113.7") as thief:
        thief.cookies.update(copied)
        assert (await thief.get("/admin/contacts")).status_code == 200
        r = await h.client.post("/admin/logout", data={"csrf": await csrf(h)})
        assert r.status_code == 303
        r = await thief.get("/admin/contacts")
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    assert (await sign_in(h)).status_code == 303  # signing in again issues a session of the new version


async def test_sign_out_everywhere_ends_every_session_and_needs_csrf(admin: Any) -> None:
    h = admin
    async with client_from(h, "203.0.113.8") as laptop:
        assert (await sign_in(replace_client(h, laptop))).status_code == 303
        page_text = (await h.client.get("/admin/account")).text
        assert "Sign out everywhere" in page_text and EMAIL in page_text
        r = await h.client.post("/admin/account/sign-out-everywhere", data={})
        assert r.status_code == 403
        assert (await laptop.get("/admin/contacts")).status_code == 200
        r = await h.client.post("/admin/account/sign-out-everywhere", data={"csrf": csrf_of(page_text)})
        assert r.status_code == 303 and r.headers["location"] == "/admin/login"
        assert (await laptop.get("/admin/contacts")).status_code == 303
        assert (await h.client.get("/admin/contacts")).status_code == 303
        assert "Signed out everywhere" in (await h.client.get("/admin/login")).text


async def test_sessions_survive_a_restart_and_the_key_is_not_in_the_database(admin: Any, store_url: str) -> None:
    """No TRAILMARK_SECRET_KEY: with SQLite, the key made on first use is kept in a 0600 file beside the
    database, so a restart accepts the same cookie; with PostgreSQL it lives in this process only. Either way
    nothing in the database signs sessions (a copy of it cannot forge one)."""
    async with admin.store.db.read() as conn:
        assert await conn.fetch_all("SELECT * FROM admin_settings WHERE key = 'secret_key'") == []
    store = open_store(store_url)
    app = create_app(Settings(database_url=store_url), store=store)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver",
            cookies=admin.client.cookies) as other:
        answer = (await other.get("/admin/contacts")).status_code
    if store_url.startswith("postgresql"):
        assert answer == 303  # signed by another process's key: sign in again (or set TRAILMARK_SECRET_KEY)
    else:
        assert answer == 200
        key_file = Path(store_url + ".secret-key")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(store_url).stat().st_mode) == 0o600


async def test_a_shared_secret_key_keeps_sessions_across_processes(harness: Any, store_url: str) -> None:
    settings = Settings(database_url=store_url, secret_key="shared-" + "k" * 40)
    harness.app.state.settings = settings
    harness.app.state.admin_session_codec = None
    assert (await sign_in(harness)).status_code == 303
    store = open_store(store_url)
    app = create_app(settings, store=store)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver",
            cookies=harness.client.cookies) as other:
        assert (await other.get("/admin/contacts")).status_code == 200


async def test_passwords_are_salted_scrypt_hashes() -> None:
    one, two = auth.hash_password("same password!"), auth.hash_password("same password!")
    assert one != two and one.startswith("scrypt$16384$8$5$")
    assert auth.verify_password("same password!", one) and not auth.verify_password("Same password!", one)
    assert not auth.verify_password("x", "not a hash")


def client_from(h: Any, address: str) -> httpx.AsyncClient:
    """Another browser of the same app, from ``address`` (as ``request.client.host`` shows it)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app, client=(address, 40000)),
                             base_url="http://testserver")


async def test_sign_in_from_an_address_that_keeps_failing_is_blocked(harness: Any) -> None:
    h = harness
    await h.store.create_teammate(EMAIL, password_hash())
    async with client_from(h, "203.0.113.9") as attacker:
        codes = [(await sign_in(replace_client(h, attacker), password="wrong password!")).status_code
                 for _ in range(6)]
        assert codes == [401] * 5 + [429]
        r = await sign_in(replace_client(h, attacker))
        assert r.status_code == 429 and "Too many failed sign-ins from your address" in r.text
        assert int(r.headers["retry-after"]) >= 1


async def test_wrong_passwords_for_an_email_never_lock_out_the_right_one(harness: Any) -> None:
    """Trust finding: 10 wrong passwords for a teammate's email locked out the correct one for 15 minutes,
    whoever typed them. Failures for an account now only slow down; the address that failed is blocked."""
    h = harness
    await h.store.create_teammate(EMAIL, password_hash())
    async with client_from(h, "203.0.113.9") as attacker:
        for _ in range(10):
            assert (await sign_in(replace_client(h, attacker), password="wrong password!")).status_code in (401, 429)
    r = await sign_in(h)  # the teammate, from their own address
    assert r.status_code == 303 and r.headers["location"] == "/admin/contacts", r.text


def replace_client(h: Any, client: httpx.AsyncClient) -> Any:
    return dataclasses.replace(h, client=client)


def test_throttle_backs_off_exponentially_per_address_and_only_delays_per_account() -> None:
    now = [1000.0]
    t = SignInThrottle(address_free=3, account_free=2, window=900, max_block=60, max_delay=8, clock=lambda: now[0])
    waits = []
    for _ in range(8):
        t.failed("a", "x@example.com")
        waits.append(t.address_wait("a"))
    assert waits[:2] == [0, 0] and waits[2:] == [2, 4, 8, 16, 32, 60]
    assert t.address_wait("b") == 0  # another address is not blocked
    for _ in range(1000):
        t.failed(f"addr{_}", "x@example.com")
    assert t.account_delay("x@example.com") == 8  # capped: slow, never refused
    now[0] += 900
    assert t.address_wait("a") == 0 and t.account_delay("x@example.com") == 0  # forgotten after the window
    t.failed("a", "x@example.com")
    t.succeeded("a", "x@example.com")
    assert t.account_delay("x@example.com") == 0


async def test_password_hashes_run_in_threads_two_at_a_time(harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust finding: 8 clients signing in at once ran 8 scrypt hashes at once (and /health slowed tenfold)."""
    h = harness
    await h.store.create_teammate(EMAIL, password_hash())
    running, peak, lock = [0], [0], threading.Lock()
    loop_thread = threading.get_ident()

    def slow_verify(password: str, stored: str) -> bool:
        assert threading.get_ident() != loop_thread  # never on the event loop
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.15)
        with lock:
            running[0] -= 1
        return False

    monkeypatch.setattr(auth, "verify_password", slow_verify)
    clients = [client_from(h, f"198.51.100.{i}") for i in range(8)]
    try:
        answers = await asyncio.gather(*(sign_in(replace_client(h, c), password="wrong password!") for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert [r.status_code for r in answers] == [401] * 8
    assert peak[0] == 2, f"{peak[0]} hashes ran at once"


# ------------------------------------------------------------------------------------------ CSRF
async def test_posts_without_the_csrf_token_are_403_and_change_nothing(admin: Any) -> None:
    h = admin
    visitor = await h.store.create_visitor(h.workspace)
    user = await h.store.create_contact(h.workspace, "user", external_id="u1")
    merged = await h.store.create_visitor(h.workspace)
    await h.store.merge_contacts(h.workspace, merged.id, user.id, reason="test", proof="test")
    merge = (await h.store.merges_for(h.workspace, user.id))[0]
    await track(h, user.id, "signed-up")
    attempts = [
        (f"/admin/contacts/{visitor.id}/convert", {}),
        (f"/admin/contacts/{user.id}/merges/{merge.id}/undo", {}),
        ("/admin/events/signed-up", {"action": "archive"}),
        ("/admin/events/signed-up", {"action": "describe", "description": "changed"}),
        ("/admin/workspace", {"app_id": h.workspace.app_id}),
        ("/admin/logout", {}),
    ]
    for path, data in attempts:
        for token in (None, "wrong-token", ""):
            body = dict(data, **({"csrf": token} if token is not None else {}))
            r = await h.client.post(path, data=body)
            assert r.status_code == 403, (path, token)
            assert "Nothing was changed" in r.text
    assert (await h.store.get_contact(h.workspace, visitor.id)).role == "visitor"
    assert (await h.store.get_contact(h.workspace, merged.id)).merged_into == user.id
    name = await h.store.event_name(h.workspace, "signed-up")
    assert not name.archived and name.description is None
    assert (await h.client.get("/admin/contacts")).status_code == 200  # still signed in


# ------------------------------------------------------------------------------------------ the contact list
@pytest.fixture(params=[-1, 10**9], ids=["walk", "aggregate"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both query plans of the contact list: the per-contact walk (no name is rare enough to drive), and
    (every name is) the aggregate over the filtered event's stats rows."""
    monkeypatch.setattr(admin_reads, "DRIVE_MAX_EVENTS", request.param)


async def seed_people(h: Any, now: int) -> dict[str, str]:
    """U1 did upload 3× (1, 2 and 40 days ago) and purchased; L1 uploaded 10 days ago as a visitor and
    100 days ago (before its 90-day window: hidden); V1 only viewed pricing; V2 uploaded 5 days ago and
    was merged into U2, who never uploaded itself."""
    ws = h.workspace
    u1 = await h.store.create_contact(ws, "user", external_id="u1", email="u1@example.com")
    for days in (1, 2, 40):
        await track(h, u1.id, "upload", now - days * DAY)
    await track(h, u1.id, "purchase", now - 3 * DAY)
    l1 = await h.store.create_visitor(ws)
    await track(h, l1.id, "upload", now - 100 * DAY)
    await track(h, l1.id, "upload", now - 10 * DAY)
    await h.store.convert_to_lead(ws, l1.id, email="l1@example.com", reason="test", proof="test")
    v1 = await h.store.create_visitor(ws)
    await track(h, v1.id, "pricing-viewed", now - DAY)
    u2 = await h.store.create_contact(ws, "user", external_id="u2")
    v2 = await h.store.create_visitor(ws)
    await track(h, v2.id, "upload", now - 5 * DAY)
    await h.store.merge_contacts(ws, v2.id, u2.id, reason="test", proof="test")
    return {"U1": u1.id, "L1": l1.id, "V1": v1.id, "U2": u2.id, "V2": v2.id}


FILTER_CASES = [
    ([("done", "upload", 0)], None, {"U1", "L1", "U2"}),
    ([("not_done", "upload", 0)], None, {"V1"}),
    ([("count_gt", "upload", 2)], None, {"U1"}),
    ([("count_lt", "upload", 2)], None, {"L1", "U2", "V1"}),
    ([("count_eq", "upload", 1)], None, {"L1", "U2"}),
    ([("count_eq", "upload", 0)], None, {"V1"}),
    ([("first_gt", "upload", 30)], None, {"U1"}),  # L1's 100-day-old visit is outside its window
    ([("first_lt", "upload", 30)], None, {"L1", "U2"}),
    ([("first_eq", "upload", 40)], None, {"U1"}),
    ([("last_lt", "upload", 3)], None, {"U1"}),
    ([("last_gt", "upload", 3)], None, {"L1", "U2"}),
    ([("last_eq", "upload", 5)], None, {"U2"}),
    ([("done", "upload", 0)], "user", {"U1", "U2"}),
    ([("done", "upload", 0), ("not_done", "purchase", 0)], None, {"L1", "U2"}),
    ([("count_gt", "upload", 0), ("last_lt", "purchase", 7)], None, {"U1"}),
    ([("done", "never-tracked", 0)], None, set()),
    ([("not_done", "never-tracked", 0)], "visitor", {"V1"}),
    ([], "visitor", {"V1"}),  # V2 was merged away: never listed
    ([], None, {"U1", "L1", "V1", "U2"}),
]


async def test_contact_filters(harness: Any, plan: None) -> None:
    h = harness
    now = int(time.time())
    ids = await seed_people(h, now)
    names = {v: k for k, v in ids.items()}
    for rows, role, expected in FILTER_CASES:
        filters = [EventFilter(op, name, n) for op, name, n in rows]
        page = await h.store.admin_contacts(h.workspace, role=role, filters=filters, now=now)
        assert {names[c.contact.id] for c in page.contacts} == expected, (rows, role)
    page = await h.store.admin_contacts(h.workspace, filters=[EventFilter("done", "upload")], now=now)
    stats = {names[c.contact.id]: c.stats[0][0] for c in page.contacts}
    assert stats == {"U1": 3, "L1": 1, "U2": 1}  # counts over the merged, windowed history


async def test_contact_list_page_and_filters_over_http(admin: Any) -> None:
    h = admin
    ids = await seed_people(h, int(time.time()))
    r = await h.client.get("/admin/contacts", params={"e0": "upload", "op0": "count_gt", "n0": "0",
                                                       "e1": "purchase", "op1": "not_done"})
    assert r.status_code == 200
    shown = set(re.findall(r'href="/admin/contacts/([0-9a-f]{24})"', r.text))
    assert shown == {ids["L1"], ids["U2"]}
    assert "did “Upload” more than 0 times" in r.text and "never did “Purchase”" in r.text
    r = await h.client.get("/admin/contacts", params={"role": "visitor"})
    assert set(re.findall(r'href="/admin/contacts/([0-9a-f]{24})"', r.text)) == {ids["V1"]}
    r = await h.client.get("/admin/contacts", params={"e0": "upload", "op0": "count_gt", "n0": "lots"})
    assert r.status_code == 200 and "enter a whole number" in r.text
    # The form as a browser submits it: the filled row and the blank one (its condition select always sent).
    r = await h.client.get("/admin/contacts", params={"e0": "upload", "op0": "done", "n0": "",
                                                       "e1": "", "op1": "done", "n1": ""})
    assert r.text.count('class="filter-row"') == 3, "the filled row, one blank row, and the URL row"


async def test_contact_list_pages_by_keyset(admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = admin
    monkeypatch.setattr(admin_routes, "CONTACTS_PAGE", 3)
    made = {(await h.store.create_visitor(h.workspace)).id for _ in range(7)}
    seen: list[str] = []
    url = "/admin/contacts?role=visitor"
    for _ in range(10):
        r = await h.client.get(url)
        seen += re.findall(r'href="/admin/contacts/([0-9a-f]{24})"', r.text)
        nxt = re.search(r'href="\?([^"]*after=[^"]*)" class="button" rel="next"', r.text)
        if not nxt:
            break
        url = "/admin/contacts?" + html.unescape(nxt.group(1))
    assert set(seen) == made and len(seen) == 7


async def test_store_pagination_with_ties(harness: Any) -> None:
    h = harness
    made = {(await h.store.create_visitor(h.workspace)).id for _ in range(7)}
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = await h.store.admin_contacts(h.workspace, role="visitor", limit=3, after=after)
        seen += [c.contact.id for c in page.contacts]
        after = page.next_after
        if after is None:
            break
    assert len(seen) == 7 and set(seen) == made


# ------------------------------------------------------------------------------------------ the profile
RICH = {
    "price": {"amount": 34999, "currency": "eur"},
    "yen": {"amount": 500, "currency": "jpy"},
    "odd": {"amount": 1234, "currency": "chf"},  # an ISO 4217 code without a symbol here
    "invoice": "in_1AbCdEfGhIjK",
    "customer": "cus_ABCDEFGH12",
    "charge": "ch_ABCDEFGH12",
    "docs": "https://example.com/docs?a=1&b=2",
    "order_number": {"url": "https://shop.example.com/orders/1", "value": "TX186373"},
    "avatar": "https://example.com/a.png",
    "renewal_date": 1767225600,
    "invited-friend": "bo",
    "duration": 19,
}


async def test_profile_renders_metadata_by_type(admin: Any) -> None:
    h = admin
    visitor = await h.store.create_visitor(h.workspace)
    await track(h, visitor.id, "viewed-pricing", int(time.time()) - 3 * DAY)
    await h.store.convert_to_lead(h.workspace, visitor.id, email="bo@example.com", message="Do you do invoices?",
                                  reason="contact form", proof="none")
    await track(h, visitor.id, "upload-complete", metadata=RICH)
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "€349.99" in page and "¥500" in page and "12.34 CHF" in page
    assert 'href="https://dashboard.stripe.com/invoices/in_1AbCdEfGhIjK"' in page
    assert 'href="https://dashboard.stripe.com/customers/cus_ABCDEFGH12"' in page
    assert 'href="https://dashboard.stripe.com/payments/ch_ABCDEFGH12"' in page
    assert '<a href="https://example.com/docs?a=1&amp;b=2"' in page
    assert re.search(r'<a href="https://shop\.example\.com/orders/1"[^>]*>TX186373</a>', page)
    img = re.search(r'<img src="https://example\.com/a\.png"[^>]*>', page)
    assert img and 'loading="lazy"' in img.group(0) and 'referrerpolicy="no-referrer"' in img.group(0)
    assert "1 Jan 2026, 00:00 UTC" in page and 'title="2026-01-01 00:00:00 UTC"' in page
    # Key names as display names: dashes are not displayed (seed doc); the stored key is the hover text.
    assert '<dt title="invited-friend">Invited friend</dt>' in page
    assert '<dt title="order_number">Order number</dt>' in page
    assert ">Upload complete</a>" in page and ">Viewed pricing</a>" in page
    assert "as visitor" in page and "as lead" in page
    assert "Do you do invoices?" in page and "message-card prominent" in page
    # Recent events summary and the conversion in the merge history.
    assert re.search(r">Upload complete</a></td>\s*<td class=\"num\">1</td>", page)
    assert "1 event</strong> came from the anonymous visit before first contact" in page
    assert "Became a lead" in page and "contact form" in page


async def test_visitor_profile_shows_when_events_expire_and_older_pages(admin: Any) -> None:
    h = admin
    visitor = await h.store.create_visitor(h.workspace)
    now = int(time.time())
    oldest = now - 10 * DAY
    await track(h, visitor.id, "first-visit", oldest)
    for i in range(55):
        await track(h, visitor.id, "viewed-page", now - 60 + i)
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "The oldest expire on" in page
    assert human_date(oldest + 90 * DAY, with_time=False) in page
    assert page.count('class="event"') == 50
    older = re.search(r'href="(/admin/contacts/[0-9a-f]+\?before=\d+:\d+)" class="button" rel="next"', page)
    assert older
    page2 = (await h.client.get(html.unescape(older.group(1)))).text
    assert page2.count('class="event"') == 6 and ">First visit</a>" in page2
    assert (await h.client.get("/admin/contacts/000000000000000000000000")).status_code == 404


# ------------------------------------------------------------------------------------------ escaping
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]


async def test_tracked_data_is_escaped_everywhere(admin: Any) -> None:
    h = admin
    lead = await h.store.create_visitor(h.workspace, attributes={"plan<script>": XSS[1]})
    await h.store.convert_to_lead(h.workspace, lead.id, email="x@example.com", name=XSS[0], message=XSS[1],
                                  reason=XSS[0], proof=XSS[1])
    evil = XSS[0]
    await track(h, lead.id, evil, metadata={"note": XSS[1], "<b>key": XSS[0], "link": XSS[2],
                                            "where": {"url": "https://ok.example/", "value": XSS[1]}})
    # Values whose stored type claims a URL they are not (an old row, a bug): never an href or src.
    await track(h, lead.id, "forged", metadata={"a": XSS[2], "b": "JaVaScRiPt:alert(1)", "c": "data:text/html,x",
                                                "d": {"url": XSS[2], "value": "click"}, "e": XSS[2]},
                types={"a": "link", "b": "image", "c": "link", "d": "rich_link", "e": "image"})
    pages = [f"/admin/contacts/{lead.id}", "/admin/contacts", "/admin/contacts?e0=" + quote(evil) + "&op0=done",
             "/admin/events", "/admin/events/" + quote(evil, safe="")]
    for path in pages:
        r = await h.client.get(path)
        assert r.status_code == 200, path
        text = r.text
        assert "<script>alert(1)</script>" not in text, path
        assert "<img src=x" not in text and "onerror=alert(1)>" not in text, path
        assert not re.search(r'(href|src)="\s*(javascript|data):', text, re.IGNORECASE), path
        assert "<b>key" not in text, path
        assert "default-src 'none'" in r.headers["content-security-policy"]
    profile = (await h.client.get(f"/admin/contacts/{lead.id}")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in profile
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in profile
    assert "javascript:alert(1)" in profile  # shown as text


async def test_event_names_with_url_characters_have_working_pages(admin: Any) -> None:
    h = admin
    contact = await h.store.create_visitor(h.workspace)
    for name in ("a/b?c#d", "100% done", "über"):
        await track(h, contact.id, name)
        r = await h.client.get("/admin/events/" + quote(name, safe=""))
        assert r.status_code == 200 and f"<code>{html.escape(name)}</code>" in r.text, name


# ------------------------------------------------------------------------------------------ event settings
async def test_event_settings_list_chart_description_archive(admin: Any) -> None:
    h = admin
    contact = await h.store.create_visitor(h.workspace)
    now = int(time.time())
    for days in (0, 0, 3):
        await track(h, contact.id, "upload-complete", now - days * DAY, metadata={"bad.key": 1, "ok": 2})
    listing = (await h.client.get("/admin/events")).text
    assert ">Upload complete</a>" in listing and "1 of 120 active" in listing
    page = (await h.client.get("/admin/events/upload-complete")).text
    assert page.count('class="bar-slot"') == 30
    assert re.search(r"<title>\w{3} \d+ \w{3} \d{4}: 2 events</title>", page)
    assert "3 events in the last 30 days" in page
    assert "bad.key" in page and "key contains characters that are not allowed" in page  # validation talks back

    token = await csrf(h, "/admin/events/upload-complete")
    r = await h.client.post("/admin/events/upload-complete", data={"csrf": token, "action": "describe",
                                                                    "description": "A file <finished> uploading"})
    assert r.status_code == 303
    page = (await h.client.get(r.headers["location"])).text
    assert "Description saved." in page and "A file &lt;finished&gt; uploading</textarea>" in page

    r = await h.client.post("/admin/events/upload-complete", data={"csrf": token, "action": "archive"})
    assert (await h.store.event_name(h.workspace, "upload-complete")).archived
    page = (await h.client.get(r.headers["location"])).text
    assert "Archived: new occurrences are dropped" in page and "badge-archived" in page
    await track(h, contact.id, "upload-complete")  # not recreated: dropped and counted
    name = await h.store.event_name(h.workspace, "upload-complete")
    assert name.archived and name.event_count == 3 and name.dropped_count == 1
    listing = (await h.client.get("/admin/events")).text
    assert "0 of 120 active" in listing and 'class="archived"' in listing

    r = await h.client.post("/admin/events/upload-complete", data={"csrf": token, "action": "unarchive"})
    assert not (await h.store.event_name(h.workspace, "upload-complete")).archived


async def test_unarchive_past_the_limit_shows_the_reason(admin: Any) -> None:
    h = admin
    contact = await h.store.create_visitor(h.workspace)
    await track(h, contact.id, "old-event")
    await h.store.set_event_archived(h.workspace, "old-event", True)
    await h.store.append_events(AppendRequest(h.workspace.id, contact.id, "js", [
        NewEvent(event_name=f"event-{i}", created_at=int(time.time()), dedupe_key=f"limit-{i}", metadata={},
                 metadata_types={}) for i in range(120)]))
    token = await csrf(h, "/admin/events/old-event")
    r = await h.client.post("/admin/events/old-event", data={"csrf": token, "action": "unarchive"})
    page = (await h.client.get(r.headers["location"])).text
    assert "Cannot have more than 120 active event names" in page and "flash-error" in page
    assert (await h.store.event_name(h.workspace, "old-event")).archived


# ------------------------------------------------------------------------------------------ convert and undo
async def test_convert_to_lead_and_undo_from_the_admin(admin: Any) -> None:
    h = admin
    visitor = await h.store.create_visitor(h.workspace)
    await track(h, visitor.id, "viewed-pricing")
    await track(h, visitor.id, "viewed-docs")
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "Convert to lead" in page and "unless they get in touch" in page
    r = await h.client.post(f"/admin/contacts/{visitor.id}/convert", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    contact = await h.store.get_contact(h.workspace, visitor.id)
    assert contact.role == "lead"
    merge = (await h.store.merges_for(h.workspace, visitor.id))[0]
    assert (merge.kind, merge.reason, merge.proof) == ("convert", f"converted by teammate {EMAIL}", "admin")
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "Converted to a lead" in page and "Became a lead" in page
    assert "2 events</strong> came from the anonymous visit" in page and "Convert to lead" not in page

    r = await h.client.post(f"/admin/contacts/{visitor.id}/merges/{merge.id}/undo", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert (await h.store.get_contact(h.workspace, visitor.id)).role == "visitor"
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "Undone" in page and "Convert to lead" in page
    # Undoing twice: the store refuses, the page says why.
    r = await h.client.post(f"/admin/contacts/{visitor.id}/merges/{merge.id}/undo", data={"csrf": csrf_of(page)})
    assert "already undone" in (await h.client.get(r.headers["location"])).text


async def test_undo_a_merge_from_the_admin(admin: Any) -> None:
    h = admin
    user = await h.store.create_contact(h.workspace, "user", external_id="u-7", email="u7@example.com")
    await track(h, user.id, "signed-in")
    visitor = await h.store.create_visitor(h.workspace)
    for name in ("viewed-pricing", "viewed-docs", "started-trial"):
        await track(h, visitor.id, name)
    await h.store.merge_contacts(h.workspace, visitor.id, user.id, reason="boot", proof="user_hash")
    page = (await h.client.get(f"/admin/contacts/{user.id}")).text
    assert "3 events</strong> came from" in page and "the anonymous visit" in page
    assert page.count('class="event"') == 4 and "from a merged contact" in page
    merged_page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    assert "was merged into" in merged_page
    merge = (await h.store.merges_for(h.workspace, user.id))[0]
    r = await h.client.post(f"/admin/contacts/{user.id}/merges/{merge.id}/undo", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert (await h.store.get_contact(h.workspace, visitor.id)).merged_into is None
    page = (await h.client.get(f"/admin/contacts/{user.id}")).text
    assert page.count('class="event"') == 1
    assert (await h.client.post(f"/admin/contacts/{user.id}/merges/999999/undo",
                                data={"csrf": csrf_of(page)})).status_code == 404


# ------------------------------------------------------------------------------------------ workspaces
async def test_workspace_picker(admin: Any) -> None:
    h = admin
    other = await h.store.create_workspace("Second")
    theirs = await h.store.create_contact(other, "user", external_id="theirs")
    page = (await h.client.get("/admin/contacts")).text
    assert 'name="app_id"' in page and theirs.id not in page
    r = await h.client.post("/admin/workspace", data={"csrf": csrf_of(page), "app_id": other.app_id})
    assert r.status_code == 303
    page = (await h.client.get("/admin/contacts")).text
    assert theirs.id in page
    # Another workspace's contact is not reachable from this one.
    await h.client.post("/admin/workspace", data={"csrf": csrf_of(page), "app_id": h.workspace.app_id})
    assert (await h.client.get(f"/admin/contacts/{theirs.id}")).status_code == 404


# ------------------------------------------------------------------------------------------ the CLI
async def test_cli_admin_create(store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert await _in_thread(cli.main, ["admin", "create", "--email", "Bo@Example.com", "--password-stdin",
                                       "--database", store_url]) == 0
    assert "created teammate bo@example.com" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert await _in_thread(cli.main, ["admin", "create", "--email", "bo@example.com", "--password-stdin",
                                       "--database", store_url]) == 1
    store = open_store(store_url)
    await store.open()
    try:
        teammate = await store.teammate_by_email("bo@example.com")
        assert teammate and auth.verify_password("a long enough password", teammate.password_hash)
    finally:
        await store.close()


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


# ------------------------------------------------------------------------------------------ rendering units
@pytest.mark.parametrize("amount, currency, shown", [
    (34999, "eur", "€349.99"), (34999, "usd", "$349.99"), (500, "jpy", "¥500"), (123456789, "gbp", "£1,234,567.89"),
    (1234, "xyz", "12.34 XYZ"), (1234, "kwd", "1.234 KWD"), (5, "eur", "€0.05"), (0, "krw", "₩0"),
])
def test_format_money(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


def test_urls_and_stripe_links() -> None:
    assert safe_url("https://a.example/x") == "https://a.example/x"
    for bad in ("javascript:alert(1)", " https://a.example", "data:text/html,x", "//a.example", "https://", 3, None):
        assert safe_url(bad) is None, bad
    assert stripe_url("in_123abcDEF") == "https://dashboard.stripe.com/invoices/in_123abcDEF"
    assert stripe_url("cus_X1") == "https://dashboard.stripe.com/customers/cus_X1"
    assert stripe_url("ch_X1") == "https://dashboard.stripe.com/payments/ch_X1"
    assert stripe_url("sub_X1") is None and stripe_url("in_../../x") is None
    assert show_value("order-id", "in_../x", "stripe").href is None
    assert show_value("when_at", 0, "date").text == "1 Jan 1970, 00:00 UTC"


def test_daily_chart_geometry() -> None:
    day = 86400 * 20000
    chart = daily_chart([(day + i * 86400, i % 4) for i in range(30)])
    assert len(chart.bars) == 30 and chart.total == sum(i % 4 for i in range(30))
    assert [t.label for t in chart.y_ticks] == ["0", "5"] and nice_max(3) == 5 and nice_max(0) == 1
    assert all(b.y + b.height == pytest.approx(chart.bottom, abs=0.2) for b in chart.bars)
    assert chart.x_ticks[-1].position == pytest.approx(chart.bars[-1].x + chart.bars[-1].width / 2, abs=1)



async def test_a_filter_that_cannot_be_applied_lists_nobody_and_filtered_tabs_show_no_counts(admin: Any) -> None:
    h = admin
    people = await seed_people(h, int(time.time()))
    broken = (await h.client.get("/admin/contacts", params={"e0": "upload-complete", "op0": "count_gt",
                                                            "n0": "three"})).text
    assert "Fix the filter marked above" in broken
    assert all(f"/admin/contacts/{cid}" not in broken for cid in people.values())
    filtered = (await h.client.get("/admin/contacts", params={"e0": "upload-complete", "op0": "done"})).text
    tabs = filtered.split('aria-label="Role"')[1].split("</nav>")[0]
    assert 'class="count"' not in tabs  # unfiltered numbers beside a filtered list would mislead
    plain = (await h.client.get("/admin/contacts")).text
    assert 'class="count"' in plain.split('aria-label="Role"')[1].split("</nav>")[0]


async def test_a_visitors_expiry_date_is_printed_once(admin: Any) -> None:
    h = admin
    visitor = await h.store.create_visitor(h.workspace)
    await track(h, visitor.id, "viewed-pricing", int(time.time()) - DAY)
    page = (await h.client.get(f"/admin/contacts/{visitor.id}")).text
    notice = page.split("The oldest expire on")[1].split("</p>")[0]
    date = re.search(r">([^<]+)</time>", notice)
    assert date and notice.count(date.group(1)) == 1, notice
