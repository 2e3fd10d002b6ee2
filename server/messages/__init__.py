"""Event-triggered messages (banners, posts, chats): a message is a JSON document (``document.py``), checked
against a tracked event by pure rules (``triggers.py``, ``audience.py``, ``frequency.py``) that ``decide.py``
reports one by one; ``content.py`` renders its text; ``engine.py`` is the entry point ingest calls, over the
store part ``server/store/messages.py``. See docs/messages.md."""
