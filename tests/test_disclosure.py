"""Disclosure notices (公告公示): fields taken from the records and frozen at publication, the 10-day window, the
public pages (no login, nothing outside the disclosed fields, cacheable, rate-limited), postings, complaints, the
compliance table, reminders and the report's section."""

import re
import subprocess
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from registry.disclosure import documents, services
from registry.disclosure.models import Complaint, ComplaintChannel, Notice, NoticeState, NoticeType, Posting
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.permissions import OutOfScope
from registry.projects.models import FundSource, FundStage, Project
from registry.projects.services import update_project
from tests.factories import ID_A, make_transaction

TODAY = date.today()
#: A person's mobile number and name put where the records allow them (责任人): never on a public page.
MOBILE = "13912345678"
PERSON = "赵责任"


def _draft(world_ns, actor=None, notice_type=NoticeType.ANNUAL_PLAN, county=None, year=2024, **extra):
    data = {
        "county_id": county or world_ns.zhaojue.id,
        "year": year,
        "type": notice_type.value,
        "issuing_unit": "昭觉县乡村振兴局",
        "local_phone": "0834-8888888",
        "window_start": TODAY,
        "window_end": TODAY + timedelta(days=9),
    } | extra
    return services.create_notice(data, actor=actor)


@pytest.fixture
def w(ctx):
    """The standard world as objects, with the project's record filled in (and a 责任人 with a mobile number)."""
    from tests.factories import World

    world = World()
    update_project(
        world.project_a,
        {
            "implementing_unit": "昭觉县农业农村局",
            "responsible_person": f"{PERSON}{MOBILE}"[:50],
            "farmer_benefit": "务工就业带动 30 户",
            "performance_targets": "建成车间 1 个",
            "beneficiaries": 120,
            "beneficiaries_lifted": 80,
        },
        actor=None,
    )
    make_transaction(world.project_a, stage=FundStage.PLANNED, amount_fen=150_000_00, on=date(2024, 3, 2))
    db.session.flush()
    return world


def test_notice_fields_equal_the_records_and_stay_frozen(w):
    notice = _draft(w, actor=w.county)
    services.publish(notice, actor=w.county)
    project = w.project_a
    snap = notice.snapshot
    assert snap["columns"] == list(documents.COLUMNS[NoticeType.ANNUAL_PLAN])
    (row,) = snap["rows"]
    assert row == {
        "name": project.name,
        "place": "昭觉县",
        "category": project.category.label,
        "implementing_unit": "昭觉县农业农村局",
        "period": f"{project.planned_start} 起",
        "sources": FundSource.EAST_FISCAL.label,
        "planned_total": 150_000_00,
        "east_planned": 150_000_00,
        "farmer_benefit": "务工就业带动 30 户",
        "performance_targets": "建成车间 1 个",
    }
    assert snap["phones"] == ["12317", "0834-8888888"] and snap["issuing_unit"] == "昭觉县乡村振兴局"
    assert notice.state is NoticeState.PUBLISHED and re.fullmatch(r"[a-z2-9]{10}", notice.public_no)
    pdf = notice.pdf
    assert pdf.startswith(b"%PDF")
    frozen = dict(snap)

    # The records change afterwards: the published notice does not.
    update_project(project, {"name": "改过的名称", "farmer_benefit": "改过的机制"}, actor=None)
    make_transaction(project, stage=FundStage.PLANNED, amount_fen=1_00, on=date(2024, 5, 1))
    db.session.flush()
    db.session.refresh(notice)
    assert notice.snapshot == frozen and notice.pdf == pdf
    assert services.preview(notice)["rows"][0]["name"] == "产业帮扶车间建设"
    # A draft's preview follows the records until it is published.
    draft = _draft(w, actor=w.county, notice_type=NoticeType.ALLOCATION)
    assert services.preview(draft)["rows"][0]["name"] == "改过的名称"


def test_the_window_rule_in_the_service_and_the_database(w):
    with pytest.raises(ServiceError, match="不得少于 10 天") as info:
        _draft(w, actor=w.county, window_end=TODAY + timedelta(days=8))
    assert info.value.field == "window_end"
    assert _draft(w, actor=w.county).window_days == 10
    # The database refuses a 9-day window however it is written.
    notice = db.session.scalar(sa.select(Notice))
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(
            sa.update(Notice).where(Notice.id == notice.id).values(window_end=notice.window_start + timedelta(days=8))
        )
    # …and a published notice without its snapshot, or a withdrawn one without a reason.
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.update(Notice).where(Notice.id == notice.id).values(state="published"))
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.text("UPDATE disclosure_notices SET state = 'gone' WHERE id = :id"), {"id": notice.id})


def test_states_publish_withdraw_and_what_each_refuses(w):
    notice = _draft(w, actor=w.county)
    with pytest.raises(ServiceError, match="只有已发布的公告可以撤回"):
        services.withdraw(notice, "错误", actor=w.county)
    with pytest.raises(ServiceError, match="发布后才能登记张贴"):
        services.add_posting(notice, {"place": "村务公开栏", "posted_on": TODAY}, actor=w.county)
    services.publish(notice, actor=w.county)
    with pytest.raises(ServiceError, match="不能再发布"):
        services.publish(notice, actor=w.county)
    with pytest.raises(ServiceError, match="张贴日期应在公示期内"):
        services.add_posting(notice, {"place": "村务公开栏", "posted_on": TODAY - timedelta(days=1)}, actor=w.county)
    services.add_posting(notice, {"place": "某村村务公开栏", "posted_on": TODAY}, actor=w.county)
    complaint = services.add_complaint(
        notice, {"received_on": TODAY, "channel": ComplaintChannel.PHONE, "content": "金额有疑问"}, actor=w.county
    )
    with pytest.raises(ServiceError, match="答复日期不能早于收到日期"):
        services.answer_complaint(
            complaint, {"answered_on": TODAY - timedelta(days=1), "answer": "已核实"}, actor=w.county
        )
    services.answer_complaint(complaint, {"answered_on": TODAY, "answer": "已核实，金额无误"}, actor=w.county)
    assert not complaint.is_open
    with pytest.raises(ServiceError, match="请填写撤回原因"):
        services.withdraw(notice, " ", actor=w.county)
    services.withdraw(notice, "项目金额调整，重新公告", actor=w.county)
    assert notice.state is NoticeState.WITHDRAWN and notice.withdrawal_reason == "项目金额调整，重新公告"
    # An ended window cannot be published any more.
    old = _draft(w, actor=w.county, notice_type=NoticeType.ALLOCATION)
    with pytest.raises(ServiceError, match="公示期已于"):
        services.publish(old, actor=w.county, today=TODAY + timedelta(days=10))
    # Every step is audited.
    from registry.kernel.audit.models import AuditEvent

    actions = set(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.entity_type.like("disclosure%"))))
    assert {"create", "status", "update"} <= actions


def test_scope_the_gate_refuses_other_counties_liaisons_and_readers(w):
    with pytest.raises(OutOfScope, match="苍溪县不在您的管辖范围内"):
        _draft(w, actor=w.county, county=w.cangxi.id, year=2019)
    with pytest.raises(OutOfScope, match="不能登记或修改公告"):
        _draft(w, actor=w.liaison)
    with pytest.raises(OutOfScope):
        _draft(w, actor=w.reader)
    other = _draft(w, actor=w.province, county=w.cangxi.id, year=2019)
    with pytest.raises(OutOfScope):
        services.publish(other, actor=w.prefecture)
    assert other.state is NoticeState.DRAFT


def test_types_choose_their_projects(w):
    with pytest.raises(ServiceError, match="没有已完工、已验收或已移交的项目"):
        _draft(w, actor=w.county, notice_type=NoticeType.COMPLETION)
    first = _draft(w, actor=w.county, notice_type=NoticeType.ARRANGEMENT)
    assert [i.project_id for i in first.items] == [w.project_a.id]
    # The next batch holds only projects no earlier arrangement notice listed.
    with pytest.raises(ServiceError, match="尚未在项目安排公告中公开"):
        _draft(w, actor=w.county, notice_type=NoticeType.ARRANGEMENT)


# ---- public pages ----------------------------------------------------------------------------------------------


@pytest.fixture
def published(app, world):
    """A published Zhaojue notice with a complaint (which names a person and a phone) and a withdrawn Cangxi one."""
    from registry.auth.models import User

    with app.app_context():
        project = db.session.get(Project, world.project_a)
        update_project(
            project, {"responsible_person": PERSON + MOBILE, "implementing_unit": "昭觉县农业农村局"}, actor=None
        )
        county = db.session.scalar(sa.select(User).where(User.username == "county"))
        province = db.session.scalar(sa.select(User).where(User.username == "province"))
        notice = services.publish(_draft_ids(world, county), actor=county)
        services.add_complaint(
            notice,
            {"received_on": TODAY, "channel": ComplaintChannel.PHONE, "content": f"村民{PERSON}来电 {MOBILE}"},
            actor=county,
        )
        other = services.create_notice(
            {"county_id": world.cangxi, "year": 2019, "type": "allocation", "issuing_unit": "苍溪县乡村振兴局",
             "window_start": TODAY, "window_end": TODAY + timedelta(days=12)}, actor=province,
        )  # fmt: skip
        services.publish(other, actor=province)
        services.withdraw(other, "资金数据有误，更正后重新公告", actor=province)
        db.session.commit()
        return notice.public_no, other.public_no, notice.id


def _draft_ids(world, actor):
    return services.create_notice(
        {"county_id": world.zhaojue, "year": 2024, "type": "annual_plan", "issuing_unit": "昭觉县乡村振兴局",
         "local_phone": "0834-8888888", "window_start": TODAY, "window_end": TODAY + timedelta(days=9)},
        actor=actor,
    )  # fmt: skip


def _public_pages(client, numbers):
    live, withdrawn, _ = numbers
    urls = [
        "/gongshi/",
        "/gongshi/?county=513431",
        "/gongshi/?year=2024&q=车间",
        f"/gongshi/{live}",
        f"/gongshi/{withdrawn}",
    ]
    return {url: client.get(url) for url in urls}


def test_anonymous_visitors_find_and_read_a_notice(client, world, published):
    live, withdrawn, notice_id = published
    index = client.get("/gongshi/?county=513431").get_data(as_text=True)
    assert "昭觉县2024年东西部协作财政援助资金年度项目计划公告" in index
    assert withdrawn not in index  # a withdrawn notice is not listed
    assert "昭觉县" in client.get("/gongshi/?q=产业帮扶").get_data(as_text=True)
    assert live not in client.get("/gongshi/?q=没有这个项目").get_data(as_text=True)
    page = client.get(f"/gongshi/{live}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "12317" in text and "0834-8888888" in text and "共 10 天" in text
    pdf = client.get(f"/gongshi/{live}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert "inline" in pdf.headers["Content-Disposition"]
    gone = client.get(f"/gongshi/{withdrawn}").get_data(as_text=True)
    assert "已于" in gone and "资金数据有误，更正后重新公告" in gone and "拨付资金" not in gone
    assert client.get(f"/gongshi/{withdrawn}.pdf").status_code == 404
    # Internal ids name nothing publicly; a draft has no public page.
    assert client.get(f"/gongshi/{notice_id}").status_code == 404
    assert client.get("/gongshi/../disclosure/").status_code in (302, 404)
    assert client.get("/disclosure/").status_code == 302  # staff pages need a login


def test_public_pages_show_nothing_outside_the_disclosed_fields(client, world, published):
    pages = _public_pages(client, published)
    allowed_headings = {label for label, _ in documents.FIELDS.values()} | {"序号"}
    for url, response in pages.items():
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        # No identity number (the world's placements hold some), no person's mobile number or name, no complaint.
        assert ID_A not in html and MOBILE not in html and PERSON not in html, url
        assert not re.search(r"\d{17}[\dXx]", html), url
        assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", html), url
        assert "来电" not in html and "金额有疑问" not in html
        # No internal id: every link is a public number, a county code, a year or a static file.
        for href in re.findall(r'href="([^"]+)"', html):
            assert re.fullmatch(
                r"/gongshi/([a-z2-9]{10}(\.pdf)?)?(\?[\w=&%\-]*)?|/static/css/app\.css(\?[\w=&]*)?", href
            ), (url, href)
        # The notice's table has only headings of the list.
        for table in re.findall(r'<table class="data table notice-table">.*?</thead>', html, re.S):
            headings = set(re.findall(r"<th[^>]*>([^<]+)</th>", table))
            assert headings <= allowed_headings, headings - allowed_headings
    pdf = client.get(f"/gongshi/{published[0]}.pdf").data
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert MOBILE not in text and PERSON not in text and ID_A not in text
    assert "12317" in text and "0834-8888888" in text and "公示期" in text and "昭觉县乡村振兴局" in text


def test_public_pages_are_cacheable_secure_and_without_inline_code(client, world, published, as_user):
    from tests.test_security_headers import EXPECTED, inline_code

    for url, response in _public_pages(client, published).items():
        assert response.headers["Cache-Control"] == "public, max-age=300", url
        assert "Set-Cookie" not in response.headers, url
        for name, value in EXPECTED.items():
            assert response.headers[name] == value, (url, name)
        assert inline_code(response.get_data(as_text=True)) == [], url
    pdf = client.get(f"/gongshi/{published[0]}.pdf")
    assert pdf.headers["Cache-Control"] == "public, max-age=300" and "Set-Cookie" not in pdf.headers
    # Signed in, the public page still sends no session cookie; a missing notice is not stored.
    staff = as_user("county")
    response = staff.get(f"/gongshi/{published[0]}")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    missing = client.get("/gongshi/nosuchnotice")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"


def test_public_pages_are_rate_limited_per_address(app, client, world):
    app.config["DISCLOSURE_RATE_LIMIT"] = 3
    try:
        for _ in range(3):
            assert client.get("/gongshi/", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
        refused = client.get("/gongshi/", environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) in range(1, 61)
        assert refused.headers["Cache-Control"] == "no-store"
        assert client.get("/gongshi/", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200
    finally:
        app.config["DISCLOSURE_RATE_LIMIT"] = 120


def test_the_counter_is_one_row_per_address_and_minute(app, world):
    from registry.disclosure.models import PublicHit
    from registry.disclosure.public import count_hit

    with app.app_context():
        assert [count_hit("10.0.0.9", now=600.0) for _ in range(3)] == [1, 2, 3]
        assert count_hit("10.0.0.9", now=660.0) == 1  # a new minute
        assert count_hit("10.0.0.9", now=780.0) == 1  # and the minutes before the last are deleted
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PublicHit)) == 1


# ---- staff pages, compliance, reminders, report ------------------------------------------------------------------


def test_staff_draft_preview_publish_posting_complaint_through_the_pages(app, world, as_user):
    client = as_user("county")
    form = {
        "county_id": world.zhaojue, "year": "2024", "type": "annual_plan", "issuing_unit": "昭觉县乡村振兴局",
        "local_phone": "0834-8888888", "window_start": str(TODAY), "window_end": str(TODAY + timedelta(days=8)),
    }  # fmt: skip
    refused = client.post("/disclosure/new", data=form)
    assert refused.status_code == 200 and "公示期不得少于 10 天" in refused.get_data(as_text=True)
    created = client.post("/disclosure/new", data=form | {"window_end": str(TODAY + timedelta(days=9))})
    assert created.status_code == 302
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "预览（按当前记录生成，发布时固定）" in page and "产业帮扶车间建设" in page
    with app.app_context():
        notice = db.session.scalar(sa.select(Notice))
        notice_id, version = notice.id, notice.version_id
    assert client.post(f"/disclosure/{notice_id}/publish", data={"version": version}).status_code == 302
    posting = {"place": "某村村务公开栏", "posted_on": str(TODAY)}
    assert client.post(f"/disclosure/{notice_id}/postings", data=posting).status_code == 302
    complaint = {"received_on": str(TODAY), "channel": "phone", "content": "请核实金额"}
    assert client.post(f"/disclosure/{notice_id}/complaints", data=complaint).status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Posting)) == 1
        c = db.session.scalar(sa.select(Complaint))
    answer = {"complaint_id": c.id, "answered_on": str(TODAY), "answer": "已核实", "version": c.version_id}
    assert client.post(f"/disclosure/{notice_id}/answer", data=answer).status_code == 302
    page = client.get(f"/disclosure/{notice_id}").get_data(as_text=True)
    assert "已答复" in page and "某村村务公开栏" in page
    # The liaison and out-of-scope staff do not see it.
    assert as_user("liaison").get(f"/disclosure/{notice_id}").status_code == 404


def test_compliance_table(app, world, as_user, published):
    client = as_user("county")
    page = client.get(f"/disclosure/compliance?county={world.zhaojue}&year=2024").get_data(as_text=True)
    assert "产业帮扶车间建设" in page and "年度资金项目计划" in page
    assert "待答复的投诉反映" in page and TODAY.isoformat() in page
    with app.app_context():
        from registry.disclosure.queries import compliance
        from registry.models import Unit, User

        user = db.session.scalar(sa.select(User).where(User.username == "county"))
        table = compliance(db.session.get(Unit, world.zhaojue), 2024, user, TODAY)
        assert (table.disclosed, table.undisclosed) == (1, 0)
        assert len(table.running) == 1 and len(table.open_complaints) == 1
        # Once the window has ended without a recorded posting, the notice counts as posted too briefly.
        later = compliance(db.session.get(Unit, world.zhaojue), 2024, user, TODAY + timedelta(days=20))
        assert [days for _, days in later.short] == [None] and later.running == []
    assert as_user("county").get(f"/disclosure/compliance?county={world.cangxi}").status_code == 404


def test_reminders_windows_ending_and_undisclosed_projects(app, world, published):
    from registry.disclosure.figures import undisclosed_projects, windows_ending

    with app.app_context():
        due = list(windows_ending(TODAY + timedelta(days=8)))
        assert len(due) == 1 and "公示期将于" in due[0][2]
        assert list(windows_ending(TODAY)) == []  # ten days ahead: not yet
        # Zhaojue's 2024 project is listed; a project of this year without a notice is reminded.
        from registry.models import Unit
        from registry.projects.models import ProjectStatus
        from tests.factories import make_project

        make_project(
            db.session.get(Unit, world.zhaojue), db.session.get(Project, world.project_a).pairing,
            year=TODAY.year, status=ProjectStatus.APPROVED,
        )  # fmt: skip
        db.session.flush()
        waiting = list(undisclosed_projects(TODAY))
        assert len(waiting) == 1 and "1 个已立项" in waiting[0][2]
        db.session.rollback()


def test_the_quarterly_report_states_the_disclosure_status(app, world, published):
    from registry.counties.models import Unit
    from registry.kernel.periods import Quarter
    from registry.reports.documents import report_html
    from registry.reports.queries import quarter_figures

    with app.app_context(), app.test_request_context():
        figures = quarter_figures(db.session.get(Unit, world.zhaojue), Quarter.of(2024, 4))
        (section,) = figures.sections
        # Published today, after the quarter's end: not yet disclosed as of 2024Q4.
        if TODAY > date(2024, 12, 31):
            assert (section.projects, section.disclosed) == (1, 0)
        html = report_html(figures)
        assert "资金项目公告公示情况" in html and "尚未公告的项目：产业帮扶车间建设" in html
        current = quarter_figures(db.session.get(Unit, world.zhaojue), Quarter.containing(TODAY))
        assert current.sections[0].year == TODAY.year


@pytest.mark.parametrize("name", ["county", "year", "q", "page"])
def test_the_public_search_takes_hostile_values(client, world, name):
    hostile = ["\x00", "长" * 10_000, "99999999999999999999", "-1", "%", "_", "' OR 1=1 --", "513431\x00", "２０２４"]
    for value in hostile:
        response = client.get("/gongshi/", query_string={name: value})
        # A control character is refused before any query, in Chinese (registry.kernel.errors); the rest filter nothing.
        expected = 400 if "\x00" in value else 200
        assert response.status_code == expected, (name, value[:20])
    assert client.get("/gongshi/%00").status_code == 404
    assert client.get("/gongshi/" + "a" * 300 + ".pdf").status_code == 404


def test_the_staff_list_takes_hostile_filters(world, as_user):
    client = as_user("county")
    for value in ["\x00", "长" * 10_000, "99999999999999999999", "%"]:
        refused = "\x00" in value  # control characters: 400 before any query (registry.kernel.errors)
        for name in ("q", "county", "year", "state", "type"):
            status = client.get("/disclosure/", query_string={name: value}).status_code
            assert status == (400 if refused else 200), (name, value[:20])
        status = client.get("/disclosure/compliance", query_string={"county": value, "year": value}).status_code
        assert status in ((400,) if refused else (200, 404))


@pytest.fixture
def photo_storage(app, tmp_path):
    """Evidence files in a temporary folder (never the worktree's instance/)."""
    from registry.kernel.storage import LocalStorage

    saved = app.extensions.get("evidence_storage")
    app.extensions["evidence_storage"] = LocalStorage(tmp_path / "evidence")
    yield
    app.extensions["evidence_storage"] = saved


def test_posting_photos_are_evidence_files_of_the_notice(app, world, as_user, published, photo_storage):
    import io

    from PIL import Image

    with app.app_context():
        notice = db.session.scalar(sa.select(Notice).where(Notice.public_no == published[0]))
        posting = services.add_posting(notice, {"place": "某村村务公开栏", "posted_on": TODAY}, actor=None)
        db.session.commit()
        notice_id, posting_id = notice.id, posting.id
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(image, "JPEG")
    county = as_user("county")
    url = f"/evidence/disclosure_postings/{posting_id}"
    uploaded = county.post(
        url + "/upload", data={"file": (io.BytesIO(image.getvalue()), "公开栏.jpg")}, content_type="multipart/form-data"
    )
    assert uploaded.status_code in (302, 303)
    assert "1 张" in county.get(f"/disclosure/{notice_id}").get_data(as_text=True)
    assert "公开栏.jpg" in county.get(url).get_data(as_text=True)
    # Staff outside the county, liaisons and readers cannot add photos; nobody anonymous sees them.
    assert as_user("liaison").get(url).status_code == 404
    refused = as_user("reader").post(
        url + "/upload", data={"file": (io.BytesIO(image.getvalue()), "x.jpg")}, content_type="multipart/form-data"
    )
    assert refused.status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(url).headers["Location"].startswith("/login")
    assert "公开栏.jpg" not in anonymous.get(f"/gongshi/{published[0]}").get_data(as_text=True)
