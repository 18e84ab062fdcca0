"""The quarterly report as a director reads it (issue 24, sections 2 and 3): a prefecture's and the province's
targets, the cover, the captions beside tables, money that adds up, the evidence table and the page layout."""

import io
import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from registry.agreements import ranking
from registry.agreements.models import Agreement, Indicator
from registry.agreements.services import set_targets
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.money import rate
from registry.kernel.periods import Quarter
from registry.projects.models import FundStage, Project
from registry.reports.documents import report_html
from registry.reports.queries import quarter_figures
from tests.factories import make_project, make_transaction

pypdf = pytest.importorskip("pypdf")

Q3 = Quarter.parse("2024Q3")


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def set_county_targets(world, county_id, values: dict[str, int]):
    agreement = db.session.get(Agreement, world.agreement_zc)
    by_code = {i.code: i.id for i in db.session.scalars(sa.select(Indicator))}
    set_targets(agreement, db.session.get(Unit, county_id), {by_code[k]: v for k, v in values.items()}, actor=None)


# ---- 2. a prefecture's and the province's targets: one definition ----------------------------------------------


@pytest.mark.parametrize("unit_name", ["liangshan", "sichuan"])
def test_unit_without_targets_reports_its_counties_sum_everywhere(app, world, unit_name):
    """凉山州 has no targets of its own: its report, dashboard, ranking row and home page all give the sum of its
    counties' targets and the 完成率 against it, and the report's caption says so."""
    with app.app_context():
        set_county_targets(world, world.zhaojue, {"fiscal_funds": 300_000_00, "labour_total": 4})
        set_county_targets(world, world.butuo, {"fiscal_funds": 100_000_00, "labour_total": 6})
        db.session.commit()
        unit = db.session.get(Unit, getattr(world, unit_name))
        f = quarter_figures(unit, Q3)
        (agreement,) = f.agreements
        rows = {r.code: r for r in agreement.rows}
        assert agreement.summed_targets
        assert rows["fiscal_funds"].target == 400_000_00 and rows["labour_total"].target == 10
        assert rows["fiscal_funds"].rate == rate(rows["fiscal_funds"].year_to_date, 400_000_00)
        html = compact(report_html(f))
        assert "无单列目标：年度目标为所辖县目标之和" in html
        # The ranking's and the home page's row of the unit (ranking.for_unit) reads the same targets.
        pace = ranking.for_unit(db.session.get(Agreement, world.agreement_zc), unit, f.cutoff)
        cells = dict(zip((c.code for c in pace.columns), pace.rows[0].cells, strict=True))
        assert pace.rows[0].summed_targets
        assert cells["fiscal_funds"].target == 400_000_00 and cells["labour_total"].target == 10
        assert cells["fiscal_funds"].rate == rows["fiscal_funds"].rate


def test_unit_with_targets_of_its_own_keeps_them(app, world):
    with app.app_context():
        set_county_targets(world, world.zhaojue, {"fiscal_funds": 300_000_00})
        set_county_targets(world, world.liangshan, {"fiscal_funds": 900_000_00})
        db.session.commit()
        (agreement,) = quarter_figures(db.session.get(Unit, world.liangshan), Q3).agreements
        assert not agreement.summed_targets
        assert {r.code: r.target for r in agreement.rows}["fiscal_funds"] == 900_000_00


def test_dashboard_of_a_prefecture_shows_the_summed_targets(world, as_user, app):
    with app.app_context():
        set_county_targets(world, world.zhaojue, {"labour_total": 7})
        db.session.commit()
    page = compact(as_user("prefecture").get(f"/reports/{world.liangshan}/2024Q3").get_data(as_text=True))
    assert "无单列目标：年度目标为所辖县目标之和" in page


# ---- 2. 编制单位 -----------------------------------------------------------------------------------------------


def test_preparer_is_the_unit_whose_report_it_is(app, world, as_user):
    """The province office downloads 凉山州's report: 编制单位 names 凉山州, not the office that downloaded it."""
    client = as_user("province")
    pdf = client.get(f"/reports/{world.liangshan}/2024Q3.pdf")
    assert pdf.status_code == 200
    text = compact("\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages))
    match = re.search(r"编制单位(.+?)生成时间", text)
    assert match and match.group(1).startswith("四川省凉山彝族自治州"), text[:400]


# ---- 3. the cover ------------------------------------------------------------------------------------------------


RECORD_HASH = "ab12cd34ef56" + "0" * 52


def record_cover_text(app, world) -> str:
    from registry.closing.record import qr_svg, record_pdf  # deferred: the closing package renders the record

    with app.test_request_context():
        f = quarter_figures(db.session.get(Unit, world.zhaojue), Q3)
        url = f"http://localhost/closing/verify/{'t' * 43}?h={RECORD_HASH}"
        record = {
            "number": 1, "figures_sha256": RECORD_HASH, "approvers": [("审定", "张三", "四川省办", "2024-10-15 09:00")],
            "verify_url": url, "qr": qr_svg(url), "token": "t" * 43,
            "signer": "Common Name: 四川省东西部协作工作办公室, Organization: 四川省东西部协作工作办公室, Country: CN",
        }  # fmt: skip
        pdf = record_pdf(f, record, preparer="昭觉县")
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return [compact(p.extract_text()) for p in pages]


def test_cover_of_record_speaks_as_a_person_reads(app, world):
    pages = record_cover_text(app, world)
    cover = pages[0]
    assert "签章单位四川省东西部协作工作办公室" in cover and "生成时间" in cover
    assert "核验码AB12-CD34-EF56" in cover
    for developer in ("数据版本", "CommonName", "Organization", "Country", "SHA-256", RECORD_HASH, "closing/verify"):
        assert developer not in "".join(pages), developer
    # The cover is one page: page 2 begins with the report's first section.
    assert pages[1].startswith("一、主要指标完成情况")


# ---- 3. captions beside the tables ---------------------------------------------------------------------------------


def test_destination_caption_says_each_person_counts_once_in_the_total(app, world):
    with app.app_context():
        html = compact(report_html(quarter_figures(db.session.get(Unit, world.zhaojue), Q3)))
    caption = re.search(r"<caption>就业人数(.*?)</caption>", html).group(1)
    assert "每人在“合计”中只计一次，在其就业过的每个去向中各计一次" in caption


def test_projects_table_says_which_projects_the_indicator_counts(app, world):
    """项目数 counts projects 立项 or later; the projects table beside it says which of its projects those are."""
    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        from registry.pairings.models import Pairing  # deferred: test-only lookup

        pairing = db.session.get(Pairing, world.a)
        planned = make_project(zhaojue, pairing, name="储备项目")  # 2024, not approved
        make_transaction(planned, stage=FundStage.PLANNED, amount_fen=10_000_00, on=date(2024, 2, 1))
        db.session.commit()
        f = quarter_figures(zhaojue, Q3)
        (this_year,) = [g for g in f.projects.groups if g.label.startswith("2024")]
        assert len(this_year.projects) == 2 and this_year.in_count == 1
        assert {r.code: r for r in f.agreements[0].rows}["project_count"].year_to_date == 1
        html = compact(report_html(f))
    assert "2024年度项目（2个，其中1个已立项、计入“项目数”）" in html
    # The report prints the projects by status (every project is on the dashboard): the 储备 line says it does not
    # count, the 立项 line nothing.
    assert html.count("不计入项目数") == 1 and "储备（不计入项目数）" in re.sub(r"<[^>]+>", "", html)


# ---- 3. the evidence table ---------------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_evidence_table_counts_records_still_missing_files_at_the_cut_off(app, world):
    """The table says what offices need: records that require evidence and have none, as of the cut-off, counting
    a file by its upload date (China time), in the report's table style."""
    from registry.evidence import services  # deferred: the evidence services upload the test's files
    from registry.evidence.kinds import KINDS  # deferred: as above
    from registry.evidence.models import Attachment  # deferred: as above
    from registry.projects.models import FundTransaction  # deferred: test-only records

    q2 = Quarter.parse("2024Q2")
    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        project = db.session.get(Project, world.project_a)
        late = make_transaction(project, amount_fen=1_000_00, on=date(2024, 6, 20))
        for record, at in ((db.session.get(FundTransaction, world.txn_a), datetime(2024, 6, 30, 15, 59)),
                           (late, datetime(2024, 6, 30, 16, 0))):  # fmt: skip
            attachment = services.upload(KINDS["fund_transactions"], record, io.BytesIO(PDF), "凭证.pdf", actor=None)
            attachment.uploaded_at = at.replace(tzinfo=UTC)  # 23:59 and 24:00 China time on the cut-off day
        db.session.commit()
        rows = {r.name: r for r in services.quarter_counts(q2.start, q2.end, [zhaojue.id], None, q2.end)}
        # Two fund records of Q2: one file in time, one uploaded after the cut-off (not counted).
        assert (rows["资金记录"].records, rows["资金记录"].with_files, rows["资金记录"].missing) == (2, 1, 1)
        assert rows["资金记录"].required and not rows["劳务协作记录"].required
        # Moved after the cut-off, the file no longer counts; the quarter's figures do not move with later uploads.
        db.session.execute(sa.update(Attachment).values(uploaded_at=datetime(2024, 7, 2, tzinfo=UTC)))
        db.session.commit()
        f = quarter_figures(zhaojue, q2)
        assert {r.name: r.missing for r in f.evidence}["资金记录"] == 2
        html = report_html(f)
    table = re.search(r'<table class="data keep evidence">(.*?)</table>', html, re.S)
    assert table, "the evidence table has the report's table style"
    assert "尚缺佐证" in table.group(1) and "劳务协作记录" not in table.group(1)
    assert "有附件的数量" not in html and "佐证材料待补情况" in html
