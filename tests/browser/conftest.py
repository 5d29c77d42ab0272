"""Browser-test helpers. The `browser` and `page` fixtures live in the root
conftest, so every test module shares one Playwright instance: a second
sync Playwright in the same thread fails ("Sync API inside the asyncio loop")."""


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
