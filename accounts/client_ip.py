"""The client's address for login throttling (django-axes), also behind the TLS proxy.

Behind a proxy every request comes from the proxy's address, so locking
"username + REMOTE_ADDR" would lock everyone out together, or nobody. The
proxy appends the address it received the request from to X-Forwarded-For;
with TRUSTED_PROXY_COUNT proxies in front, the client is the entry that many
places from the right. Entries further left were written by the client
itself and are never trusted, so a spoofed header cannot dodge the lock.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR")
