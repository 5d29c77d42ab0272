"""Browser-test helpers. The `browser` and `page` fixtures live in the root
conftest, so every test module shares one Playwright instance: a second
sync Playwright in the same thread fails ("Sync API inside the asyncio loop")."""

from __future__ import annotations


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


class Problems:
    """Everything that went wrong in the page while it was watched: console errors, script
    errors, failed requests and HTTP errors (4xx/5xx), favicon included.

    `watch(page)` first; `list` says what happened, as text, for an assertion.
    """

    def __init__(self) -> None:
        self.list: list[str] = []

    def watch(self, page) -> Problems:
        page.on("console", lambda msg: msg.type == "error" and self.list.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.list.append(f"script: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda res: res.status >= 400 and self.list.append(f"HTTP {res.status}: {res.url}"))
        return self

    def _failed(self, request) -> None:
        # ERR_ABORTED: the browser dropped a request of a page it was leaving (the
        # next goto); the page did nothing wrong. A refused request (CSP, DNS,
        # connection) fails otherwise, and an HTTP error is caught as a response.
        if request.failure != "net::ERR_ABORTED":
            self.list.append(f"failed: {request.url} {request.failure}")
