"""Untrusted text to safe HTML: markdown rendered, then sanitised with nh3.

Prompts and responses come from imported datasets and model outputs, so
they are hostile by default. Raw HTML in the markdown is escaped by the
renderer, and nh3 then keeps only formatting tags: no scripts, no event
handlers, no `javascript:` URLs, and no images at all (a remote image is a
tracking beacon). The Content-Security-Policy is the second wall.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from preferences.formats import transcript_to_messages

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])

_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
# No style attributes: the CSP forbids inline styles anyway.
_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}


def render_markdown(text: str) -> SafeString:
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)


EMPTY_RESPONSE = mark_safe('<p class="muted empty-response">(empty response)</p>')


def render_response(text: str) -> SafeString:
    """A response as HTML; one that is empty or only whitespace says so (it is a real answer: silence)."""
    return render_markdown(text) if text.strip() else EMPTY_RESPONSE


def render_conversation(prompt: str) -> list[dict]:
    """The shared prompt as turns: [{role, html}], roles user/assistant/system."""
    return [{"role": m["role"], "html": render_markdown(m["content"])} for m in transcript_to_messages(prompt)]
