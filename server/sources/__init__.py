"""Event sources other than the snippet and the REST API: Segment-compatible (``segment.py``) and Stripe
webhooks (``stripe.py``). The historical importer is ``server/importer.py``.

Every source ends in the same steps as the REST API: ``ingest.validate_event`` (the metadata rules) and
``store.append_events`` (dedupe on ``(workspace, dedupe_key)``, all-or-nothing per contact). What lives
reading a bounded (optionally gzipped) body and strict JSON is the HTTP edge's (``server/http_edge.py``),
as for every endpoint.
"""

