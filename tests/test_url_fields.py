"""URL fields: REST refuses a contact ``avatar`` that is not http(s) (Intercom's error shape, naming the field),
and the admin never loads an image (metadata image, avatar) from a loopback, private or local host: those are
links (server/admin/image_hosts.py, server/admin/render.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trailmark.admin.image_hosts import is_local_url
from trailmark.admin.render import show_value
from trailmark.metadata import IMAGE
from trailmark.store.models import AppendRequest, NewEvent

from .test_admin import sign_in

# 127.0.0.1 in full-width digits and dots, which IDNA maps to ASCII as browsers do.
FULLWIDTH_127 = "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/x.png"
LOCAL = [
    "http://127.0.0.1/x.png", "http://127.9.9.9/x.png", "http://10.0.0.8/x.png", "http://172.16.4.1/x.png",
    "http://192.168.1.1/router.png", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png", "http://[fe80::1]/x.png", "http://[fd00::1]/x.png", "http://0.0.0.0/x.png",
    "http://localhost/x.png", "http://LOCALHOST./x.png", "http://app.localhost/x.png", "http://printer.local/x.png",
    "http://nas.home.arpa/x.png", "http://db.internal/x.png", "http://intranet/x.png",
    "http://100.64.0.1/x.png",  # carrier-grade NAT
    # What browsers read as 127.0.0.1 / 192.168.0.1: short, octal, hex, integer, percent-encoded, full-width.
    "http://127.1/x.png", "http://0177.0.0.1/x.png", "http://0x7f.0.0.1/x.png", "http://0x7f000001/x.png",
    "http://2130706433/x.png", "http://3232235521/x.png", "http://127.0.0.%31/x.png", FULLWIDTH_127,
    "http://user:pw@127.0.0.1:8080/x.png", "http://[::1]:9000/x.png", "http://256.1.1.1/x.png",
]
PUBLIC = ["https://images.example.com/a.png", "http://93.184.216.34/a.png", "https://cdn.shop.example/x.jpg?w=2",
          "https://[2606:4700:4700::1111]/a.png", "https://1.1.1.1/a.png", "https://local.example.com/a.png"]


@pytest.mark.parametrize("url", LOCAL)
def test_local_hosts_are_recognised(url: str) -> None:
    assert is_local_url(url)
    shown = show_value("photo", url, IMAGE)
    assert shown.src is None and shown.href == url and shown.title and "private" in shown.title


@pytest.mark.parametrize("url", PUBLIC)
def test_public_hosts_are_images(url: str) -> None:
    assert not is_local_url(url)
    assert show_value("photo", url, IMAGE).src == url


@pytest.fixture
async def admin(harness: Any) -> AsyncIterator[Any]:
    r = await sign_in(harness)
    assert r.status_code == 303, r.text
    yield harness


async def test_admin_shows_local_images_and_avatars_as_links(admin: Any) -> None:
    h = admin
    r = await h.client.post("/contacts", headers=h.auth, json={
        "role": "user", "external_id": "av-1", "avatar": "http://192.168.0.1/me.png"})
    assert r.status_code == 200, r.text
    local_id = r.json()["id"]
    r = await h.client.post("/contacts", headers=h.auth, json={
        "role": "user", "external_id": "av-2", "avatar": "https://images.example.com/me.png"})
    public_id = r.json()["id"]
    await h.store.append_events(AppendRequest(h.workspace.id, local_id, "api", [NewEvent(
        event_name="uploaded", created_at=int(time.time()), dedupe_key="k-local",
        metadata={"shot": "http://127.0.0.1:8080/admin.png", "cdn": "https://images.example.com/ok.png"},
        metadata_types={"shot": IMAGE, "cdn": IMAGE}, dropped=[])]))

    page = (await h.client.get(f"/admin/contacts/{local_id}")).text
    assert '<img src="http://192.168.0.1' not in page and '<img src="http://127.0.0.1' not in page
    assert '<a href="http://192.168.0.1/me.png"' in page and '<a href="http://127.0.0.1:8080/admin.png"' in page
    assert '<img src="https://images.example.com/ok.png"' in page  # a public image is still an image
    page = (await h.client.get(f"/admin/contacts/{public_id}")).text
    assert '<img src="https://images.example.com/me.png"' in page


@pytest.mark.parametrize("avatar", ["javascript:alert(1)", "data:image/png;base64,AAAA", "/me.png",
                                    "ftp://files.example/me.png", "https://exa mple.com/a.png", 42, ""])
async def test_rest_refuses_a_non_http_avatar_naming_the_field(harness: Any, avatar: Any) -> None:
    h = harness
    r = await h.client.post("/contacts", headers=h.auth, json={"role": "user", "external_id": "x1", "avatar": avatar})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error.list"
    assert body["errors"][0]["code"] == "parameter_invalid" and body["errors"][0]["field"] == "avatar"
    assert (await h.client.get("/contacts", headers=h.auth)).json()["total_count"] == 0  # nothing stored


async def test_rest_update_refuses_a_javascript_avatar_and_keeps_the_old_one(harness: Any) -> None:
    h = harness
    r = await h.client.post("/contacts", headers=h.auth, json={
        "role": "user", "external_id": "x2", "avatar": "https://images.example.com/a.png"})
    assert r.status_code == 200
    cid = r.json()["id"]
    r = await h.client.put(f"/contacts/{cid}", headers=h.auth, json={"avatar": "javascript:alert(document.cookie)"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "avatar"
    assert (await h.client.get(f"/contacts/{cid}", headers=h.auth)).json()["avatar"] == {
        "type": "avatar", "image_url": "https://images.example.com/a.png"}
    r = await h.client.put(f"/contacts/{cid}", headers=h.auth, json={"avatar": None})  # null still clears it
    assert r.status_code == 200 and r.json()["avatar"] is None
