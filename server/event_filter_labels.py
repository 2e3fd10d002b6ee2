"""The event filters' words, shared by the admin's contact list and the messages' "why not?" (no HTTP here)."""

from __future__ import annotations

# The store's event filters (admin_reads.EVENT_FILTER_OPS) as the contact list's condition menu says them.
OP_LABELS: dict[str, str] = {
    "done": "has done",
    "not_done": "has not done",
    "count_gt": "count is more than",
    "count_lt": "count is less than",
    "count_eq": "count is exactly",
    "first_gt": "first did more than … days ago",
    "first_lt": "first did less than … days ago",
    "first_eq": "first did exactly … days ago",
    "last_gt": "last did more than … days ago",
    "last_lt": "last did less than … days ago",
    "last_eq": "last did exactly … days ago",
}
