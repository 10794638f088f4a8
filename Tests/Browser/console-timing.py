"""Times the console's machine page in Debian's headless Chromium: from navigation start to the machine list rendered
(the page's own `ora:machines-rendered` mark, set once the first page of machines is in the table).

    console-timing.py BASE USER PASSWORD LOADS

Logs USER in once, then opens /machines LOADS times in a new browser profile each (nothing cached) and LOADS times
in one profile (the console's files cached, as a helper who comes back). Prints {"cold": [ms, …], "warm": [ms, …]}.
A benchmark's helper (`ora-bench console`), not a test.
"""
import json
import sys
import time

from playwright.sync_api import sync_playwright

VIEWPORT = {"width": 1280, "height": 800}
MARK = """(() => { const mark = performance.getEntriesByName('ora:machines-rendered')[0];
    return mark ? mark.startTime : null; })()"""


def rendered(page):
    """The mark's time after navigation start, in ms, once the page has set it."""
    deadline = time.time() + 30
    while time.time() < deadline:
        value = page.evaluate(MARK)
        if value is not None:
            return value
        time.sleep(0.01)
    raise RuntimeError("the machine list was never rendered; the page shows: " + page.inner_text("body"))


def main():
    base, user, password, loads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(base + "/")
        page.fill("#login-user", user)
        page.fill("#login-password", password)
        page.click("form button[type=submit]")
        page.wait_for_selector("tbody tr")
        cookies = context.cookies()
        context.close()

        cold = []
        for _ in range(loads):
            context = browser.new_context(viewport=VIEWPORT)
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(base + "/machines", wait_until="commit")
            cold.append(rendered(page))
            context.close()

        warm = []
        context = browser.new_context(viewport=VIEWPORT)
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(base + "/machines", wait_until="commit")
        rendered(page)
        for _ in range(loads):
            page.goto(base + "/machines", wait_until="commit")
            warm.append(rendered(page))
        browser.close()
    print(json.dumps({"cold": cold, "warm": warm}))


if __name__ == "__main__":
    main()
