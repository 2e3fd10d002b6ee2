"""Who the message is for: roles, the contact list's event filters (and its "visited a URL containing …"),
attribute conditions, the page's URL.

Event filters are Intercom's contact-list filters with the same definitions and the same SQL as the list
(``store.admin_reads``): ``store.messages.event_filters_match`` evaluates them for one contact and
``audience_estimate`` counts the whole audience; here they arrive as booleans in ``History``.
Attribute conditions: a standard attribute (name, email, user_id, phone, role, created_at, signed_up_at,
last_seen_at) or a custom one; ``eq`` ignores case for text; ``gt``/``lt`` compare numbers (dates are unix
seconds). Page URL: the URL of the page the event was tracked on (browser events only).
"""

from __future__ import annotations

from typing import Any

from ..event_filter_labels import OP_LABELS
from ..store.admin_reads import OPS_WITH_VALUE, VISITED_URL, EventFilter
from ..store.models import Contact
from .document import AttributeCondition, Audience, PageCondition
from .rules import History, Rule


def attribute_value(contact: Contact, attr: str) -> Any:
    standard = {"name": contact.name, "email": contact.email, "user_id": contact.external_id,
                "phone": contact.phone, "role": contact.role, "created_at": contact.created_at,
                "signed_up_at": contact.signed_up_at, "last_seen_at": contact.last_seen_at}
    if attr in standard:
        return standard[attr]
    return (contact.custom_attributes or {}).get(attr)


def check_attribute(cond: AttributeCondition, contact: Contact) -> Rule:
    value = attribute_value(contact, cond.attr)
    if cond.op == "exists":
        ok = value is not None and value != ""
        return Rule("attribute", ok, f"{cond.attr} is {'set' if ok else 'not set'}.")
    if value is None:
        return Rule("attribute", False, f"{cond.attr} is not set.")
    if cond.op in ("gt", "lt"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return Rule("attribute", False, f"{cond.attr} is {value!r}, not a number.")
        ok = value > cond.value if cond.op == "gt" else value < cond.value
        word = "more" if cond.op == "gt" else "less"
        return Rule("attribute", ok, f"{cond.attr} is {value}: {'' if ok else 'not '}{word} than {cond.value}.")
    if cond.op == "contains":
        ok = isinstance(value, str) and str(cond.value).casefold() in value.casefold()
        return Rule("attribute", ok, f"{cond.attr} is {value!r}: {'contains' if ok else 'does not contain'} "
                                     f"{cond.value!r}.")
    if isinstance(value, str) and isinstance(cond.value, str):
        ok = value.casefold() == cond.value.casefold()
    else:
        ok = value == cond.value and type(value) is type(cond.value)
    return Rule("attribute", ok, f"{cond.attr} is {value!r}: {'equals' if ok else 'is not'} {cond.value!r}.")


def check_page(cond: PageCondition, page_url: str | None) -> Rule:
    if page_url is None:
        return Rule("page_url", False, "The event was not tracked on a page (a server source), so its page "
                                       "cannot match.")
    ok = {"equals": page_url == cond.value, "contains": cond.value in page_url,
          "starts_with": page_url.startswith(cond.value)}[cond.op]
    word = {"equals": "equal", "contains": "contain", "starts_with": "start with"}[cond.op]
    return Rule("page_url", ok, f"The page {page_url} {'does' if ok else 'does not'} {word} {cond.value}.")


def describe_filter(f: EventFilter) -> str:
    if f.op == VISITED_URL:
        return f"Visited a URL containing {f.url!r}"
    words = OP_LABELS[f.op]
    if f.op in OPS_WITH_VALUE:
        words = words.replace("…", str(f.value)) if "…" in words else f"{words} {f.value}"
    return f"{f.event_name}: {words}"


def audience_rules(audience: Audience, contact: Contact, page_url: str | None, history: History) -> list[Rule]:
    rules = [Rule("role", contact.role in audience.roles,
                  f"The contact is a {contact.role}" + (" (in the audience)." if contact.role in audience.roles
                                                        else f"; the audience is {', '.join(audience.roles)}."))]
    for i, f in enumerate(audience.events):
        ok = history.event_filters[i] if i < len(history.event_filters) else False
        rules.append(Rule("event_filter", ok, f"{describe_filter(f)}: {'yes' if ok else 'no'}."))
    rules += [check_attribute(a, contact) for a in audience.attributes]
    rules += [check_page(p, page_url) for p in audience.page_url]
    return rules
