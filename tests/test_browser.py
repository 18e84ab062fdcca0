"""End to end in a real headless Chromium (Debian's), driven by Playwright against a live server."""

import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def live_server(app, world):
    """The app on a free loopback port in a thread (the database is the suite's, so data is shared).

    CSRF protection is on, as in production, so the forms must carry their tokens.
    """
    app.config["WTF_CSRF_ENABLED"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    app.config["WTF_CSRF_ENABLED"] = False


def test_login_and_browse_pairings(page, live_server, world):
    page.goto(live_server + "/pairings/")
    assert page.url.startswith(live_server + "/login")
    page.fill("#username", "liaison")
    page.fill("#password", "wrong password here")
    page.click("#login-submit")
    assert page.locator(".flash-danger").inner_text().strip() == "用户名或密码错误。"
    page.fill("#username", "liaison")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(live_server + "/pairings/")
    body = page.locator("main").inner_text()
    assert "余姚市" in body and "昭觉县" in body
    assert "顺德区" not in body  # a Zhejiang liaison never sees Guangdong's pairings
    page.click("text=退出")
    page.wait_for_url(live_server + "/login")
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")
