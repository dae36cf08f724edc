"""The chat page at ``/`` of a language-model server: one HTML file, inline CSS and JavaScript, no
external assets.

It streams answers from ``/v1/chat/completions`` (server-sent events read with ``fetch``) and keeps
the conversation in the page only. Text is inserted with ``textContent``, never as HTML. The
markup, style and script are ``templates/chat_page.*``.
"""

from __future__ import annotations

from forgeml import templates


def render_chat_page(model_id: str, *, api_key_required: bool) -> str:
    """The page for ``model_id``; with an API key required it shows a key field (kept in the page only)."""
    return templates.render("chat_page.html.j2", model_id=model_id, api_key_required=api_key_required)
