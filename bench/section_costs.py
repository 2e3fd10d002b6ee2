"""Where an event's server time goes (section ``costs``): the in-process, step-by-step breakdown of
``POST /messenger/web/events`` from bench/ingest_costs.py, beside the wrk figures of ``ingest``/``batched``."""

from __future__ import annotations

import asyncio

import ingest_costs
import sqlite_floor
from report import TITLES, add, say

BATCHES = [1, 10]


def section_costs(quick: bool) -> None:
    say("\n[costs] µs per event, step by step, in-process")
    TITLES["costs"] = ("where the server's time goes, in-process on a fresh SQLite file (bench/ingest_costs.py): "
                       f"CPU µs per event at {' / '.join(map(str, BATCHES))} event(s) per request; 32 callers at "
                       "once; ratio: the step's share of the whole request")
    costs = asyncio.run(ingest_costs.measure(1000 if quick else 3000, BATCHES, 32, profile=False))
    whole = " / ".join(f"{c.whole:,.1f}" for c in costs)
    for step, values in ingest_costs.table(costs):
        shares = [float(v.replace(",", "")) / c.whole for v, c in zip(values, costs, strict=True)]
        add("costs", f"{step}: µs per event", " / ".join(values), "whole request in-process", whole,
            " / ".join(f"{x:.2f}" for x in shares))
    # The floor: the same rows written by plain sqlite3 (bench/sqlite_floor.py), beside the writer step.
    batch = 32
    for per_transaction, plain, full in sqlite_floor.measure([batch], 2000 if quick else 6000):
        writer = costs[0].steps["writer"]
        add("costs", f"floor: plain sqlite3 writing the same rows, {per_transaction} requests per transaction "
            "(events row only / with the aggregates): µs per event", f"{plain:,.1f} / {full:,.1f}",
            "writer step at 1 event/request (above)", f"{writer:,.1f}", f"{full / writer:.2f}")
