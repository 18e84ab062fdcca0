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


def _sign_in(page, live_server, username):
    page.goto(live_server + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(live_server + "/")


def _csp_refusals(page) -> list[str]:
    """Chromium reports every resource, script or style the page's policy refused on the console."""
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    return refused


def test_pages_run_under_the_content_security_policy(page, live_server, world):
    from tests.test_security_headers import EXPECTED

    refused = _csp_refusals(page)
    _sign_in(page, live_server, "province")
    paths = [
        "/",
        f"/units/{world.zhaojue}?year=2024",
        f"/agreements/{world.agreement_zc}",
        f"/reports/{world.zhaojue}/2024Q2",
        f"/projects/{world.project_a}",
        "/placements/import",
        "/no-such-page",
    ]
    for path in paths:
        response = page.goto(live_server + path)
        assert response.headers["content-security-policy"] == EXPECTED["Content-Security-Policy"], path
    assert refused == []

    # What moved out of style attributes into the stylesheet still applies.
    page.goto(live_server + f"/units/{world.zhaojue}?year=2024")
    assert page.eval_on_selector(".year-input", "e => getComputedStyle(e).width") == "90px"  # 6rem at 15px
    page.goto(live_server + f"/reports/{world.zhaojue}/2024Q2")
    assert (
        page.eval_on_selector_all("svg.chart-svg", "es => es.map(e => getComputedStyle(e).maxWidth)") == ["640px"] * 3
    )
    assert refused == []

    # The check itself works: an inline style added to the page now is refused and reported.
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>')""")
    page.wait_for_timeout(100)  # the console message arrives asynchronously
    assert any("style-src" in text for text in refused)


def test_confirm_navigate_and_back_still_work_from_the_script_file(page, live_server, world):
    refused = _csp_refusals(page)
    _sign_in(page, live_server, "province")

    # data-confirm: dismissing the dialog keeps the transaction, accepting deletes it.
    page.goto(live_server + f"/projects/{world.project_a}")
    delete = page.locator("button[data-confirm='确定删除这条资金记录吗？']")
    assert delete.count() == 1
    page.once("dialog", lambda dialog: dialog.dismiss())
    delete.click()
    assert page.url == live_server + f"/projects/{world.project_a}"
    assert delete.count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    page.wait_for_load_state()
    assert page.locator("button[data-confirm='确定删除这条资金记录吗？']").count() == 0

    # data-navigate: choosing another county in the targets page's select opens its page.
    page.goto(live_server + f"/agreements/{world.agreement_zc}/targets/{world.zhaojue}")
    page.select_option("select[data-navigate]", label="四川省凉山彝族自治州布拖县")
    page.wait_for_url(live_server + f"/agreements/{world.agreement_zc}/targets/{world.butuo}")

    # The error page's back button (a javascript: link before the CSP) shows only with script and goes back.
    page.goto(live_server + "/projects/")
    page.goto(live_server + "/no-such-page")
    back = page.locator("button[data-history-back]")
    assert back.is_visible()
    back.click()
    page.wait_for_url(live_server + "/projects/")
    assert refused == []


def test_dashboard_and_lists_fit_a_phone_and_the_navigation_collapses(page, live_server, world):
    """390 px wide: no page-wide horizontal scrolling (wide tables scroll inside their box); the menu folds away."""
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_in(page, live_server, "province")
    nav = page.locator("#mainnav")
    assert not nav.is_visible()
    page.click("label.nav-toggle-label")
    assert nav.is_visible()
    page.click("#mainnav >> text=帮扶项目")
    page.wait_for_url(live_server + "/projects/")
    paths = [
        f"/reports/{world.zhaojue}/2024Q2",
        f"/reports/{world.liangshan}/2024Q2",
        "/projects/",
        "/placements/",
        "/pairings/",
        f"/agreements/{world.agreement_zc}/ranking",
        "/",
    ]
    for path in paths:
        page.goto(live_server + path)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, path
    # At a desktop width the navigation is there without a menu button.
    page.set_viewport_size({"width": 1366, "height": 768})
    assert nav.is_visible() and not page.locator("label.nav-toggle-label").is_visible()


def test_generate_all_reports_watch_the_progress_and_download_the_zip(page, live_server, world, app, tmp_path):
    """生成全部报告 on the reports page: a job page whose bar fills as a real consumer renders, then the ZIP."""
    import zipfile

    from tests.tasks_support import Queue, ThreadConsumer, queue_settings

    refused = _csp_refusals(page)
    _sign_in(page, live_server, "province")
    with Queue(app, queue_settings("sqlite", tmp_path)):
        page.goto(live_server + "/reports/?quarter=2019Q2")
        page.click("#batch-all")
        page.wait_for_url("**/jobs/*")
        assert page.locator("#job-state").inner_text() == "排队中"
        with ThreadConsumer():
            page.wait_for_selector("#job-download:not([hidden])", timeout=60_000)
        assert page.locator("#job-state").inner_text() == "已完成"
        assert page.eval_on_selector("#job-progress", "e => [e.value, e.max]") == [1, 1]
        with page.expect_download() as info:
            page.click("#job-download-link")
        download = info.value
        assert download.suggested_filename == "2019年第2季度东西部协作季度报告-全部结对县.zip"
        target = tmp_path / "reports.zip"
        download.save_as(target)
        assert zipfile.ZipFile(target).namelist() == ["510824-苍溪县-2019Q2-东西部协作季度报告.pdf"]
    assert refused == []


def test_an_anonymous_visitor_finds_a_countys_notice_and_opens_its_pdf(app, page, live_server, world):
    """公告公示 as the public sees it: no login, the county chosen from the list, the notice, its A4 PDF."""
    import sqlalchemy as sa

    from registry.auth.models import User
    from registry.disclosure.models import Notice
    from registry.disclosure.services import publish
    from registry.kernel.extensions import db

    with app.app_context():
        county = db.session.scalar(sa.select(User).where(User.username == "county"))
        publish(db.session.get(Notice, world.notice_a), actor=county)
        db.session.commit()
    refused = _csp_refusals(page)
    page.goto(live_server + "/gongshi/")
    assert page.url == live_server + "/gongshi/"  # no login asked
    page.select_option("#public-county", label="昭觉县")
    page.click("#public-search")
    page.wait_for_url("**/gongshi/?county=513431**")
    page.click("text=昭觉县2024年东西部协作财政援助资金年度项目计划公告")
    page.wait_for_selector("#notice-pdf")
    body = page.locator("main").inner_text()
    assert "产业帮扶车间建设" in body and "12317" in body and "共 10 天" in body
    href = page.get_attribute("#notice-pdf", "href")
    pdf = page.request.get(live_server + href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF") and pdf.headers["cache-control"].startswith("public")
    assert refused == []


def test_public_pages_fit_a_phone_and_show_a_notices_money(page, live_server, world, app):
    """Issue 26 item 6: at 390 px a published notice shows every column (money included) as a card per project,
    the verification page of an approved report fits, and a citizen reaches 公告公示 from the login page."""
    import sqlalchemy as sa

    from registry.closing.models import ReportVersion
    from registry.disclosure.models import Notice
    from registry.disclosure.services import publish
    from registry.kernel.extensions import db
    from tests.closing_support import approved

    approved(app)
    with app.test_request_context():
        notice = publish(db.session.get(Notice, world.notice_a), actor=None)
        db.session.commit()
        public_no = notice.public_no
        token = db.session.scalar(sa.select(ReportVersion.token))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server + "/login")
    page.click("text=公告公示 ›")
    page.wait_for_url(live_server + "/gongshi/")
    for path in (f"/gongshi/{public_no}", f"/closing/verify/{token}", "/gongshi/", "/login"):
        page.goto(live_server + path)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, path
    page.goto(live_server + f"/gongshi/{public_no}")
    money = page.locator("table.notice-table td[data-label^='资金规模']").first
    box = money.bounding_box()
    assert money.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_a_posted_forms_buttons_wait_and_the_clicked_one_is_sent(page, live_server, world, app):
    """app.js disables a form's buttons once it is posted (no double post of a long action), after the submit event,
    so the clicked button's name and value still reach the server: a review passed in the browser is passed."""
    import sqlalchemy as sa

    from registry.closing import services
    from registry.closing.models import QuarterReport, ReportState
    from registry.kernel.extensions import db
    from registry.kernel.periods import Quarter
    from tests.closing_support import user

    quarter = Quarter.of(2024, 2)
    with app.test_request_context():
        services.submit(db.session.get(type(user("county").scope_unit), world.zhaojue), quarter, actor=user("county"))
        db.session.commit()
    _sign_in(page, live_server, "prefecture")
    page.goto(live_server + f"/reports/{world.zhaojue}/{quarter}")
    form = page.locator(f"form[action='/closing/{world.zhaojue}/{quarter}/review']")
    form.locator("button[value=pass]").click()
    page.wait_for_load_state()
    with app.app_context():
        db.session.remove()
        state = db.session.scalar(sa.select(QuarterReport.state).where(QuarterReport.unit_id == world.zhaojue))
    assert state is ReportState.REVIEWED
