async def test_visitor_tracks_an_event(harness):
    me = await harness.visitor()
    r = await harness.track(me["session"], {"id": "e1", "event_name": "upload-complete", "metadata": {"duration": 19}})
    assert r.status_code == 200
    assert r.json()["results"][0]["status"] == "accepted"
    assert await harness.event_count() == 1
