"""Closing a quarter: a county quarter walked through every step (提交, 退回, 审核, East-side dispute, override,
审定, 申请解锁 refused and granted, a second approval), the report of record (byte-identical downloads, a valid
signature, the public verification page) and deadlines."""

import io
from datetime import date

import pytest
import sqlalchemy as sa

from registry.closing import services, signing
from registry.closing.models import (
    ConfirmationState,
    QuarterReport,
    ReportState,
    ReportVersion,
    StepAction,
    UnlockRequest,
)
from registry.closing.record import canonical_json, compare, sha256
from registry.counties.models import Unit
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.services import ServiceError
from registry.permissions import OutOfScope
from registry.purchases.models import Purchase
from tests.closing_support import user as _user

Q = Quarter.of(2024, 2)


pytestmark = pytest.mark.usefixtures("signing_key", "east_window_open")


@pytest.fixture
def east_window_open(app, monkeypatch):
    """The quarters these tests close (2024) are long past: their East confirmation window is kept open here, as
    it is for a quarter closed in its own time; ``test_the_east_side_speaks_until_its_deadline`` moves it."""
    monkeypatch.setitem(app.config, "CONFIRM_WINDOW_DAYS", 36_500)


def _report(app, unit_id, quarter=Q) -> QuarterReport | None:
    db.session.remove()
    return db.session.scalar(
        sa.select(QuarterReport).where(
            QuarterReport.unit_id == unit_id, QuarterReport.year == quarter.year,
            QuarterReport.quarter == quarter.number,
        )
    )  # fmt: skip


def _flashes(client, response) -> str:
    assert response.status_code in (302, 303), response.status_code
    return client.get(response.location).get_data(as_text=True)


def test_a_county_quarter_walks_every_step(app, world, as_user, client):
    base = f"/closing/{world.zhaojue}/{Q}"
    county, prefecture, province = as_user("county"), as_user("prefecture"), as_user("province")
    liaison, admin = as_user("liaison"), as_user("admin")

    # 提交 by the county; 退回 by the prefecture needs an 意见.
    assert _flashes(county, county.post(f"{base}/submit"))
    with app.app_context():
        assert _report(app, world.zhaojue).state is ReportState.SUBMITTED
    page = _flashes(prefecture, prefecture.post(f"{base}/review", data={"decision": "return", "comment": ""}))
    assert "请填写退回意见" in page
    prefecture.post(f"{base}/review", data={"decision": "return", "comment": "请补充消费帮扶凭证"})
    with app.app_context():
        assert _report(app, world.zhaojue).state is ReportState.RETURNED
    # The county cannot review its own report, nor the province submit it.
    assert county.post(f"{base}/review", data={"decision": "pass"}).status_code == 403
    assert province.post(f"{base}/submit").status_code == 403
    county.post(f"{base}/submit")
    prefecture.post(f"{base}/review", data={"decision": "pass", "comment": "已核对"})
    with app.app_context():
        assert _report(app, world.zhaojue).state is ReportState.REVIEWED

    # 双台账: the Zhejiang liaison disputes; the county and the prefecture see it.
    dispute = {"decision": "dispute", "pairing_id": world.a, "disputed_figures": "消费帮扶年累计 5 万元",
               "reason": "我方台账无此笔"}  # fmt: skip
    response = liaison.post(f"{base}/confirm", data=dispute)
    assert "已提出异议" in _flashes(liaison, response)
    for who in (county, prefecture):
        page = who.get(f"/reports/{world.zhaojue}/{Q}").get_data(as_text=True)
        assert "我方台账无此笔" in page and "有异议（待答复）" in page

    # Administrators never approve; the province cannot approve over an unanswered dispute without a reason.
    assert admin.post(f"{base}/approve", data={"decision": "pass"}).status_code == 403
    page = _flashes(province, province.post(f"{base}/approve", data={"decision": "pass"}))
    assert "尚未答复" in page
    with app.app_context():
        assert _report(app, world.zhaojue).state is ReportState.REVIEWED
        assert db.session.scalar(sa.select(sa.func.count(ReportVersion.id))) == 0
    province.post(f"{base}/approve", data={"decision": "pass", "override": "东部台账尚未录入，已电话核实"})
    with app.app_context():
        report = _report(app, world.zhaojue)
        assert report.state is ReportState.APPROVED
        assert "越过未答复的异议审定：东部台账尚未录入，已电话核实" in report.steps[-1].comment
        (v1,) = report.versions
        assert v1.number == 1 and v1.pdf.startswith(b"%PDF") and v1.pdf_sha256 == sha256(v1.pdf)
        assert v1.figures_sha256 == sha256(v1.figures_json)
        v1_bytes, v1_token = v1.pdf, v1.token
        assert db.session.scalar(sa.select(QuarterLock).where(QuarterLock.unit_id == world.zhaojue)) is not None
    first_download = county.get(f"{base}/v1.pdf")
    assert first_download.data == v1_bytes

    # The prefecture's own report, one level up: submitted by the prefecture, approved by the province.
    liangshan = f"/closing/{world.liangshan}/{Q}"
    assert prefecture.post(f"{liangshan}/submit").status_code == 302
    province.post(f"{liangshan}/approve", data={"decision": "pass"})
    with app.app_context():
        assert _report(app, world.liangshan).state is ReportState.APPROVED
        assert db.session.scalar(sa.select(QuarterLock).where(QuarterLock.unit_id == world.liangshan)) is None

    # Locked: the purchase of 2024-05-01 cannot be changed, by anyone.
    with app.app_context():
        from registry.permissions import QuarterLockedError
        from registry.purchases.services import update_purchase

        with pytest.raises(QuarterLockedError, match="2024年第2季度的报表已由省协作办审定并锁定"):
            update_purchase(db.session.get(Purchase, world.purchase_a), {"amount_fen": 1}, actor=None)
        db.session.rollback()

    # 申请解锁 needs a reason; the province refuses (with a reason), then grants a second request.
    page = _flashes(county, county.post(f"{base}/unlock", data={"reason": ""}))
    assert "请填写解锁理由" in page
    county.post(f"{base}/unlock", data={"reason": "5 月一笔消费帮扶金额录错"})
    with app.app_context():
        request_id = db.session.scalar(sa.select(UnlockRequest.id))
    page = _flashes(province, province.post(f"{base}/unlock/decide", data={"request_id": request_id,
                                                                              "decision": "refuse"}))  # fmt: skip
    assert "请填写不同意的理由" in page
    province.post(f"{base}/unlock/decide", data={"request_id": request_id, "decision": "refuse", "note": "请附凭证"})
    county.post(f"{base}/unlock", data={"reason": "已附凭证：金额应为 4 万元"})
    with app.app_context():
        request_id = db.session.scalar(sa.select(sa.func.max(UnlockRequest.id)))
    assert county.post(f"{base}/unlock/decide", data={"request_id": request_id}).status_code == 403
    province.post(f"{base}/unlock/decide", data={"request_id": request_id, "decision": "grant"})
    with app.app_context():
        assert _report(app, world.zhaojue).state is ReportState.UNLOCKED
        assert db.session.scalar(sa.select(QuarterLock)) is None
        above = _report(app, world.liangshan)
        assert above.needs_review and above.steps[-1].action is StepAction.NEEDS_REVIEW

    # The county corrects the figure; a new round, this time with the dispute answered before approval.
    with app.app_context():
        purchase = db.session.get(Purchase, world.purchase_a)
        update_purchase(purchase, {"amount_fen": 4_000_000}, actor=None)
        db.session.commit()
    county.post(f"{base}/submit")
    prefecture.post(f"{base}/review", data={"decision": "pass"})
    liaison.post(f"{base}/confirm", data={"decision": "dispute", "pairing_id": world.a,
                                          "disputed_figures": "年累计 4 万元", "reason": "请说明"})  # fmt: skip
    with app.app_context():
        report = _report(app, world.zhaojue)
        (dispute,) = [c for c in db.session.scalars(sa.select(services.Confirmation))]
        assert dispute.state is ConfirmationState.DISPUTED
    assert (
        county.post(f"{base}/answer", data={"confirmation_id": dispute.id, "answer": "见 5 月凭证"}).status_code == 302
    )
    province.post(f"{base}/approve", data={"decision": "pass"})
    with app.app_context():
        report = _report(app, world.zhaojue)
        assert report.state is ReportState.APPROVED and [v.number for v in report.versions] == [1, 2]
        v1, v2 = report.versions
        assert v1.pdf == v1_bytes  # never changed
        changes = compare(v1.figures_json, v2.figures_json)
        assert any(old == 5_000_000 and new == 4_000_000 for _, old, new in changes), changes
        actions = [s.action for s in report.steps]
        assert actions.count(StepAction.RETURN) == 1 and StepAction.ANSWER in actions
        events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.entity_type == "quarter_reports"))  # fmt: skip
        assert events >= len(report.steps)

    # Version 1 downloads byte-identical, whatever changed since; the changes page names the cell.
    assert county.get(f"{base}/v1.pdf").data == v1_bytes
    page = county.get(f"{base}/v2/changes").get_data(as_text=True)
    assert "5000000" in page and "4000000" in page
    dashboard = county.get(f"/reports/{world.zhaojue}/{Q}").get_data(as_text=True)
    assert "流程记录" in dashboard and "请补充消费帮扶凭证" in dashboard and "版本 2" in dashboard

    # The public verification page: the stored copy matches, a tampered one does not.
    public = client
    page = public.get(f"/closing/verify/{v1_token}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "昭觉县" in text and "2024年第2季度" in text and "版本 1" in text and "已有版本 2" in text
    assert "苦荞" not in text and "测试用户" not in text  # no figures, no people
    ok = public.post(f"/closing/verify/{v1_token}", data={"file": (io.BytesIO(v1_bytes), "r.pdf")},
                     content_type="multipart/form-data")  # fmt: skip
    assert ok.status_code == 200 and "指纹一致" in ok.get_data(as_text=True)
    tampered = bytearray(v1_bytes)
    tampered[len(tampered) // 2] ^= 0x01
    bad = public.post(f"/closing/verify/{v1_token}", data={"file": (io.BytesIO(bytes(tampered)), "r.pdf")},
                      content_type="multipart/form-data")  # fmt: skip
    assert bad.status_code == 422 and "指纹不一致" in bad.get_data(as_text=True)
    not_pdf = public.post(f"/closing/verify/{v1_token}", data={"file": (io.BytesIO(b"hello"), "r.pdf")},
                          content_type="multipart/form-data")  # fmt: skip
    assert "这不是 PDF 文件" in not_pdf.get_data(as_text=True)
    with app.app_context():
        figures_hash = db.session.scalar(sa.select(ReportVersion.figures_sha256).where(ReportVersion.number == 1))
    assert "指纹一致" in public.get(f"/closing/verify/{v1_token}?h={figures_hash}").get_data(as_text=True)
    assert public.get(f"/closing/verify/{v1_token}?h={'0' * 64}").status_code == 422
    assert public.get("/closing/verify/nonexistent").status_code == 404


def test_the_signature_of_a_stored_version_validates(app, world, signing_files):
    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    with app.test_request_context():
        w = {u.name: u for u in db.session.scalars(sa.select(Unit))}
        province = _user("province")
        unit = w["昭觉县"]
        services.submit(unit, Q, actor=_user("county"))
        services.review(unit, Q, passed=True, comment="", actor=_user("prefecture"))
        timings = services.Timings()
        services.approve(unit, Q, actor=province, timings=timings)
        db.session.commit()
        version = db.session.scalar(sa.select(ReportVersion))
        trust = x509.Certificate.load(signing.certificate_der())
        signature = PdfFileReader(io.BytesIO(version.pdf)).embedded_signatures[0]
        # pyHanko's synchronous validator runs its own event loop: outside any loop this worker may have running.
        status = signing.outside_event_loop(
            lambda: validate_pdf_signature(signature, ValidationContext(trust_roots=[trust]))
        )
        assert status.intact and status.valid and status.trusted, status.summary()
        # A flipped byte of the signed content breaks it.
        tampered = bytearray(version.pdf)
        tampered[200] ^= 0x01
        broken = PdfFileReader(io.BytesIO(bytes(tampered)), strict=False).embedded_signatures[0]
        check = signing.outside_event_loop(
            lambda: validate_pdf_signature(broken, ValidationContext(trust_roots=[trust]))
        )
        assert not check.intact
        assert timings.render > 0 and timings.sign > 0


# ---- the rules at the service -----------------------------------------------------------------------------------


@pytest.fixture
def w(world_records):
    return world_records


def test_who_takes_which_step(w):
    with pytest.raises(OutOfScope):
        services.submit(w.zhaojue, Q, actor=w.prefecture)  # a county submits its own
    with pytest.raises(OutOfScope):
        services.submit(w.cangxi, Q, actor=w.county)
    services.submit(w.zhaojue, Q, actor=w.county)
    with pytest.raises(OutOfScope):
        services.review(w.zhaojue, Q, passed=True, comment="", actor=w.province)
    with pytest.raises(ServiceError, match="不能审定"):  # not reviewed yet
        services.approve(w.zhaojue, Q, actor=w.province)
    services.review(w.zhaojue, Q, passed=True, comment="", actor=w.prefecture)
    for actor in (w.admin, w.prefecture, w.county, w.liaison, w.reader):
        with pytest.raises(OutOfScope):
            services.approve(w.zhaojue, Q, actor=actor)
    with pytest.raises(OutOfScope):  # Cangxi has no pairing of Zhejiang's in 2024
        services.confirm(w.cangxi, Q, w.b.id, disputed=False, actor=w.liaison)
    with pytest.raises(ServiceError, match="请填写有异议的数据"):
        services.confirm(w.zhaojue, Q, w.a.id, disputed=True, actor=w.liaison)
    services.confirm(w.zhaojue, Q, w.a.id, disputed=False, actor=w.liaison)
    with pytest.raises(ServiceError, match="只有已审定的报表"):
        services.request_unlock(w.zhaojue, Q, "理由", actor=w.county)
    # The province's own report: submitted and approved by the province office.
    services.submit(w.sichuan, Q, actor=w.province)
    with pytest.raises(OutOfScope):
        services.submit(w.sichuan, Q, actor=w.prefecture)


def test_the_east_side_speaks_until_its_deadline_before_or_after_approval(app, w):
    """Issue 26 item 3: the liaison may confirm or dispute after approval, until the window ends; a dispute after
    approval is a to-do of the county and the province, and approval said that confirmations were still open."""
    from flask_login import login_user

    from registry.closing import panel as panels
    from registry.kernel.todos import todos_for

    with app.test_request_context():  # approval renders and signs the version of record (its QR's URL)
        services.submit(w.zhaojue, Q, actor=w.county)
        services.review(w.zhaojue, Q, passed=True, comment="", actor=w.prefecture)
        login_user(w.province)
        shown = panels.panel(w.zhaojue.id, Q)
        assert shown.confirmations_open and [p.id for p in shown.unconfirmed] == [w.a.id]
        services.approve(w.zhaojue, Q, actor=w.province)
        services.confirm(w.zhaojue, Q, w.a.id, disputed=True, figures="消费帮扶金额", reason="与东部台账相差 12 万元",
                         actor=w.liaison)  # fmt: skip
        mine = {name: todos_for(getattr(w, name), kinds=["quarter_report"]) for name in ("county", "province")}
        actions = {name: [t.action for t in found if t.title.startswith("昭觉县 2024年第2季度")]
                   for name, found in mine.items()}  # fmt: skip
        assert actions == {"county": ["待答复异议"], "province": ["审定后东部提出异议"]}
        # The window closes CONFIRM_WINDOW_DAYS after the report's due date (2024-07-10).
        app.config["CONFIRM_WINDOW_DAYS"] = 15
        assert services.confirm_deadline(Q) == date(2024, 7, 25)
        with pytest.raises(ServiceError, match="东部确认期限（2024-07-25）已过"):
            services.confirm(w.zhaojue, Q, w.a.id, disputed=False, actor=w.liaison)


def test_the_panel_says_when_the_east_window_has_closed(app, world, as_user):
    """A liaison who finds no confirmation form is told why: the window ended (15 days after the due date)."""
    from tests.closing_support import approved

    approved(app)
    app.config["CONFIRM_WINDOW_DAYS"] = 15  # the fixture's open window put back to the default
    page = as_user("liaison").get(f"/reports/{world.zhaojue}/{Q}").get_data(as_text=True)
    assert "东部确认期限（2024-07-25）已过" in page and "确认本季度数据" not in page


def test_a_confirmation_before_submission_is_refused(w):
    with pytest.raises(ServiceError, match="须在县提交之后"):
        services.confirm(w.zhaojue, Q, w.a.id, disputed=False, actor=w.liaison)


def test_figures_of_record_are_canonical(w):
    from registry.reports.queries import quarter_figures

    first = canonical_json(quarter_figures(w.zhaojue, Q))
    second = canonical_json(quarter_figures(w.zhaojue, Q))
    # Only the rendering time differs between two readings of the same records.
    assert [c for c in compare(first, second)] == []
    assert '"people_year_to_date"' in first


def test_due_date_and_overdue(app, w, monkeypatch):
    assert services.due_date(Q) == date(2024, 7, 10)
    monkeypatch.setitem(app.config, "REPORT_DUE_DAYS", 15)
    assert services.due_date(Q) == date(2024, 7, 15)
    assert services.is_overdue(ReportState.DRAFT, Q, today=date(2024, 7, 16))
    assert not services.is_overdue(ReportState.DRAFT, Q, today=date(2024, 7, 15))
    assert not services.is_overdue(ReportState.SUBMITTED, Q, today=date(2024, 8, 1))


def test_the_reports_list_shows_states_and_the_province_sees_counties_by_state(app, world, as_user):
    county = as_user("county")
    county.post(f"/closing/{world.zhaojue}/{Q}/submit")
    page = as_user("province").get(f"/reports/?quarter={Q}").get_data(as_text=True)
    assert "报表状态" in page and "各县报表状态" in page and "已提交" in page
    page = county.get(f"/reports/?quarter={Q}").get_data(as_text=True)
    assert "报表状态" in page and "各县报表状态" not in page
    assert "已逾期" in as_user("prefecture").get(f"/reports/?quarter={Q}").get_data(as_text=True)  # Liangshan
