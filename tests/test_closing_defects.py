"""Defects around the quarter close (#24 section 4, and the download of record of section 1): the public
verification page answers any input with a page; an approval renders and signs outside the write transaction;
two first submissions of one quarter at once; after approval the report's download is the version of record."""

import io
import threading

import pytest
import sqlalchemy as sa

from registry.closing import services, signing
from registry.closing.models import QuarterReport, ReportState, ReportVersion
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.quarter_locks import QuarterLock
from tests.closing_support import approved as _approved
from tests.closing_support import unlocked
from tests.races import race

Q = Quarter.of(2024, 2)


pytestmark = pytest.mark.usefixtures("signing_key")


@pytest.fixture
def w_records(world_records):
    return world_records


# ---- the public verification page -------------------------------------------------------------------------------


def test_the_verification_page_answers_any_input_with_a_page(app, world, client):
    version = _approved(app)
    base = f"/closing/verify/{version.token}"
    # A NUL in the query is refused for the whole site with a page of its own (errors.py).
    assert client.get(f"{base}?h=%00").status_code == 400
    for h in ("中文", "%E4%B8%AD", "%FF%FE", "é" * 64, "0" * 10_000, "%F0%9F%98%80", "\u200b" + "a" * 63):
        response = client.get(f"{base}?h={h}")
        assert response.status_code == 422, (h, response.status_code)
        assert "无法核验" in response.get_data(as_text=True)
    assert "指纹一致" in client.get(f"{base}?h={version.figures_sha256.upper()}").get_data(as_text=True)
    for token in ("中文", "%00", "a%00b", "%E4%B8%AD", "x" * 5000, "%FF", ".."):
        response = client.get(f"/closing/verify/{token}?h=中")
        assert response.status_code == 404, (token, response.status_code)
        assert "没有找到该报告版本" in response.get_data(as_text=True)
    # The typed fingerprint of the form (CSRF is off in tests).
    response = client.post(base, data={"figures_hash": "指纹"})
    assert response.status_code == 422 and "无法核验" in response.get_data(as_text=True)
    response = client.post(base, data={"figures_hash": "中" * 500})
    assert response.status_code == 200 and "输入过长" in response.get_data(as_text=True)


def test_the_printed_verification_code_is_accepted(app, world, client):
    """The cover prints a 12-digit 核验码 (AB12-CD34-EF56); typed as printed, or without dashes, spaced, in any case
    or full width, it is recognised as the code of this version, and the answer says that a code names the version
    while the file (or the whole fingerprint) proves the document."""
    from registry.reports.documents import short_code

    version = _approved(app)
    base = f"/closing/verify/{version.token}"
    code = short_code(version.figures_sha256)
    assert len(code) == 14 and code.count("-") == 2
    plain = code.replace("-", "")
    spaced = " ".join(plain[i : i + 4] for i in range(0, 12, 4))
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code)  # typed with a full-width input method
    for typed in (code, plain, plain.lower(), spaced, f" {code.lower()} ", wide, code.replace("-", "－")):
        response = client.post(base, data={"figures_hash": typed})
        text = response.get_data(as_text=True)
        assert response.status_code == 200, (typed, response.status_code)
        assert "核验码一致" in text and "可能被修改过" not in text, typed
        assert "只标明版本" in text and "上传收到的 PDF 文件" in text
        # The page then lists the whole fingerprint, which begins with the code, as the cover says.
        assert version.figures_sha256[12:] in text
    assert "核验码一致" in client.get(f"{base}?h={code}").get_data(as_text=True)

    # A wrong code is a wrong code, said as such; the whole fingerprint is still checked as one.
    wrong = ("0" if plain[0] != "0" else "1") + plain[1:]
    response = client.post(base, data={"figures_hash": wrong})
    assert response.status_code == 422 and "核验码不一致" in response.get_data(as_text=True)
    full = client.post(base, data={"figures_hash": version.figures_sha256.upper()}).get_data(as_text=True)
    assert "数据指纹一致" in full and "64 位" in full
    grouped = "-".join(version.figures_sha256[i : i + 4] for i in range(0, 64, 4))
    assert "数据指纹一致" in client.post(base, data={"figures_hash": grouped}).get_data(as_text=True)
    assert "数据指纹不一致" in client.post(base, data={"figures_hash": "0" * 64}).get_data(as_text=True)
    # Other lengths are neither: the answer says what to type.
    for typed in (plain[:8], plain + "0", version.figures_sha256[:40]):
        response = client.post(base, data={"figures_hash": typed})
        assert response.status_code == 422 and "12 位核验码" in response.get_data(as_text=True), typed


# ---- two first submissions at once ------------------------------------------------------------------------------


def test_two_first_submissions_of_a_quarter_at_once(app, world, as_user, monkeypatch):
    """The first request has inserted the quarter's report row and not committed; the second, started then, finds
    no row and inserts its own (PostgreSQL: it waits on the unique key, SQLite: on the write lock at BEGIN). When
    the first commits, the second answers in Chinese: never a 500."""
    first, second = as_user("county"), as_user("county")
    inserted, go = threading.Event(), threading.Event()
    submit = services.submit

    def paused(unit, quarter, *, actor):
        report = submit(unit, quarter, actor=actor)
        if threading.current_thread().name == "first":
            inserted.set()
            assert go.wait(30)
        return report

    monkeypatch.setattr(services, "submit", paused)
    answers = {}

    clients = {"first": first, "second": second}

    def post(name):
        answers[name] = clients[name].post(f"/closing/{world.zhaojue}/{Q}/submit")

    race(app, post, inserted, go)
    assert answers["first"].status_code == 302
    assert answers["second"].status_code == 302, answers["second"].status_code
    page = second.get(answers["second"].location).get_data(as_text=True)
    assert "报表已提交" in page or "不能提交" in page
    with app.app_context():
        reports = db.session.scalars(sa.select(QuarterReport).where(QuarterReport.unit_id == world.zhaojue)).all()
        assert [r.state for r in reports] == [ReportState.SUBMITTED]


# ---- an approval does not hold the write lock while it renders and signs -----------------------------------------


def test_other_writes_go_on_while_an_approval_renders_and_signs(app, world, as_user, monkeypatch):
    """While the province's approval signs its PDF, the county submits another quarter: on SQLite the approval
    used to hold the write lock from its BEGIN IMMEDIATE to its commit, so the submission waited the whole busy
    timeout and was answered 503 (or failed with "database is locked")."""
    county, province, prefecture = as_user("county"), as_user("province"), as_user("prefecture")
    base = f"/closing/{world.zhaojue}/{Q}"
    assert county.post(f"{base}/submit").status_code == 302
    assert prefecture.post(f"{base}/review", data={"decision": "pass"}).status_code == 302
    sign, meanwhile = signing.sign_pdf, {}

    def sign_while_another_writes(*args, **kwargs):
        thread = threading.Thread(
            target=lambda: meanwhile.setdefault("answer", county.post(f"/closing/{world.zhaojue}/2024Q3/submit"))
        )
        thread.start()
        thread.join(60)
        return sign(*args, **kwargs)

    monkeypatch.setattr(signing, "sign_pdf", sign_while_another_writes)
    response = province.post(f"{base}/approve", data={"decision": "pass", "comment": "同意"})
    assert response.status_code == 302
    assert "已审定" in province.get(response.location).get_data(as_text=True)
    assert meanwhile["answer"].status_code == 302, meanwhile["answer"].status_code
    with app.app_context():
        states = dict(
            db.session.execute(
                sa.select(QuarterReport.quarter, QuarterReport.state).where(QuarterReport.unit_id == world.zhaojue)
            ).all()
        )
        assert states == {2: ReportState.APPROVED, 3: ReportState.SUBMITTED}
        (version,) = db.session.scalars(sa.select(ReportVersion)).all()
        assert version.pdf.startswith(b"%PDF") and "审定" in version.approvers_json


def test_an_approval_prepared_on_figures_that_moved_is_rendered_again(app, w_records):
    """Figures changed between the preparation and the approval: the version stored is made from the figures as
    they are when it is approved, not the prepared ones."""
    w = w_records
    services.submit(w.zhaojue, Q, actor=w.county)
    services.review(w.zhaojue, Q, passed=True, comment="", actor=w.prefecture)
    with app.test_request_context():
        prepared = services.prepare_approval(w.zhaojue, Q, actor=w.province)
        purchase = w.purchase_a
        purchase.amount_fen += 1234_00
        db.session.flush()
        services.approve(w.zhaojue, Q, actor=w.province, prepared=prepared)
        (version,) = db.session.scalars(sa.select(ReportVersion)).all()
        assert version.token != prepared.token and version.pdf != prepared.pdf
        assert version.figures_json != prepared.figures_json


def test_an_unmoved_prepared_approval_is_stored_as_prepared(app, w_records):
    w = w_records
    services.submit(w.zhaojue, Q, actor=w.county)
    services.review(w.zhaojue, Q, passed=True, comment="", actor=w.prefecture)
    with app.test_request_context():
        prepared = services.prepare_approval(w.zhaojue, Q, actor=w.province)
        services.approve(w.zhaojue, Q, actor=w.province, prepared=prepared)
        (version,) = db.session.scalars(sa.select(ReportVersion)).all()
        assert (version.token, version.pdf, version.number) == (prepared.token, prepared.pdf, 1)
        assert db.session.scalar(sa.select(QuarterLock).where(QuarterLock.unit_id == w.zhaojue.id)) is not None


# ---- after approval, the report's download is the version of record --------------------------------------------


def test_after_approval_the_report_download_is_the_version_of_record(app, world, as_user):
    from urllib.parse import quote

    county = as_user("county")
    pdf = f"/reports/{world.zhaojue}/{Q}.pdf"
    before = county.get(pdf)
    assert before.status_code == 200 and before.data.startswith(b"%PDF")
    assert quote("非存档版") not in before.headers["Content-Disposition"]
    version = _approved(app)

    # 下载季度报告（PDF）: the signed bytes of version 1, which the verification page recognises.
    response = county.get(pdf)
    assert response.status_code == 302 and response.location.endswith(f"/closing/{world.zhaojue}/{Q}/v1.pdf")
    download = county.get(response.location)
    assert download.data == version.pdf
    assert quote("已审定版本1") in download.headers["Content-Disposition"]
    checked = county.post(f"/closing/verify/{version.token}", data={"file": (io.BytesIO(download.data), "r.pdf")},
                          content_type="multipart/form-data")  # fmt: skip
    assert checked.status_code == 200 and "指纹一致" in checked.get_data(as_text=True)

    # The live render is still offered, and called what it is.
    live = county.get(f"{pdf}?live=1")
    assert live.status_code == 200 and live.data.startswith(b"%PDF") and live.data != version.pdf
    assert quote("非存档版") in live.headers["Content-Disposition"]
    page = county.get(f"/reports/{world.zhaojue}/{Q}").get_data(as_text=True)
    assert "非存档版" in page and f"{pdf}?live=1" in page and "已审定版本 1（存档版" in page

    # Another county's report, not approved, is the live render as before; a user who may not see the unit is
    # answered by the report's own view.
    other = county.get(f"/reports/{world.cangxi}/{Q}.pdf")
    assert other.status_code in (403, 404)
    assert as_user("province").get(f"/reports/{world.cangxi}/{Q}.pdf").status_code == 200
    assert county.get(f"/reports/{world.zhaojue}/2024Q9.pdf").status_code == 404


def test_a_live_render_after_approval_is_marked_inside_the_document(app, world, as_user):
    """?live=1 of an approved quarter says on its cover and in every page's footer that it is not the archived
    version; the version of record, and renders before approval, say nothing of the kind."""
    import re
    from urllib.parse import quote

    pypdf = pytest.importorskip("pypdf")
    mark = "非存档版：本文件为实时生成，不是已审定的存档版本"

    def pages(data: bytes) -> list[str]:
        return [re.sub(r"\s+", "", p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(data)).pages]

    county = as_user("county")
    pdf = f"/reports/{world.zhaojue}/{Q}.pdf"
    for url in (pdf, f"{pdf}?live=1"):  # not approved yet: the live render is the only one, and not marked
        response = county.get(url)
        assert response.status_code == 200 and not any("非存档版" in p for p in pages(response.data)), url
    version = _approved(app)
    assert not any("非存档版" in p for p in pages(version.pdf))

    live = county.get(f"{pdf}?live=1")
    assert live.status_code == 200
    text = pages(live.data)
    assert mark in text[0] and all("非存档版" in p for p in text), [p[-80:] for p in text]
    assert county.get(pdf).status_code == 302  # the main download is still the version of record

    # Unlocked to be filled in again: the download renders the figures as they are now, which is not the version
    # of record either; marked inside and named so, whether asked live or not.
    unlocked(app)
    for url in (pdf, f"{pdf}?live=1"):
        response = county.get(url)
        assert response.status_code == 200, url
        assert quote("非存档版") in response.headers["Content-Disposition"], url
        assert mark in pages(response.data)[0], url

    # Wherever a live render is offered after approval (the dashboard's closing panel; the reports list offers the
    # main download only), its link says 非存档版.
    for page in (f"/reports/{world.zhaojue}/{Q}", f"/reports/?quarter={Q}"):
        html = county.get(page).get_data(as_text=True)
        links = re.findall(r'<a href="[^"]*live=1[^"]*">(.*?)</a>', html)
        assert all("非存档版" in link for link in links), (page, links)
        assert links or page.startswith("/reports/?"), page
