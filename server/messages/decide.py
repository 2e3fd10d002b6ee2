"""``decide(message, event, contact, history, now)``: should this event show this message to this contact,
now? Every rule is reported, passing or failing, with a sentence, so the admin can answer "Would this show
for Ada, now? Why not?". Pure: everything from the store arrives in ``history`` (see ``engine.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.models import Contact
from .audience import audience_rules
from .document import Message
from .frequency import cap_rule, gap_rule, schedule_rules
from .rules import History, Rule, TrackedEvent
from .triggers import trigger_rules


@dataclass(frozen=True)
class Decision:
    send: bool
    reasons: list[Rule]

    @property
    def failing(self) -> list[Rule]:
        return [r for r in self.reasons if not r.passed]


def decide(message: Message, event: TrackedEvent, contact: Contact, history: History, now: int) -> Decision:
    state = Rule("state", message.state == "live", "The message is live." if message.state == "live"
                 else f"The message is {message.state}, not live.")
    rules = [state, *trigger_rules(message.trigger, event, history, now),
             *audience_rules(message.audience, contact, event.page_url, history),
             *schedule_rules(message.schedule, now), cap_rule(message.frequency, history.sent_at, now)]
    gap = gap_rule(history.gap_minutes, history.last_any_at, now)
    if gap is not None:
        rules.append(gap)
    return Decision(all(r.passed for r in rules), rules)
