"""进度排名: figures equal ``progress`` per county, 序时进度, behind flags, sorting, scope per role, page, XLSX, PDF."""

import io
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.agreements import ranking
from registry.agreements.models import Agreement, Indicator
from registry.agreements.services import progress, set_targets
from registry.auth.models import Role
from registry.kernel.extensions import db
from registry.kernel.money import parse_wan
from registry.kernel.periods import Quarter
from registry.projects.models import ProjectStatus
from tests.factories import World, make_pairing, make_project, make_purchase, make_transaction, make_user

CUTOFF = date(2024, 6, 30)


def _indicator(code):
    return db.session.scalar(sa.select(Indicator).where(Indicator.code == code))


def _world():
    """The standard world, plus 布拖县 (Liangshan, paired with Cixi) and 苍溪县 (Guangyuan, paired with Cixi since
    2021) in the 2024 浙川 agreement; Zhaojue ahead on funds, Butuo behind, Cangxi without targets."""
    w = World()
    w.cixi_butuo = make_pairing(w.cixi, w.butuo, w.zc)
    w.cixi_cangxi = make_pairing(w.cixi, w.cangxi, w.zc)
    fiscal, projects = _indicator("fiscal_funds"), _indicator("project_count")
    agreement = db.session.get(Agreement, w.agreement_zc.id)
    # Zhaojue: 10 万元 arrived (the world's transaction) against 15: 66.67%, ahead of 49.73%.
    set_targets(agreement, w.zhaojue, {fiscal.id: parse_wan("15"), projects.id: 1}, actor=None)
    set_targets(agreement, w.butuo, {fiscal.id: parse_wan("1000"), projects.id: 4}, actor=None)
    butuo_project = make_project(w.butuo, w.cixi_butuo, status=ProjectStatus.APPROVED)
    make_transaction(butuo_project, amount_fen=parse_wan("100"), on=date(2024, 5, 1))
    make_purchase(w.butuo, evidence_no="FP-B-1", pairing_id=w.cixi_butuo.id)
    w.agreement = agreement
    return w


@pytest.fixture
def w(ctx):
    return _world()


def test_elapsed_share_is_the_share_of_the_year_at_the_cutoff():
    assert ranking.elapsed_share(2024, date(2024, 6, 30)) == Decimal("49.73")  # day 182 of 366
    assert ranking.elapsed_share(2023, date(2023, 1, 1)) == Decimal("0.27")  # 1 of 365
    assert ranking.elapsed_share(2023, date(2023, 12, 31)) == Decimal("100.00")
    assert ranking.elapsed_share(2023, date(2024, 3, 1)) == Decimal("100.00")
    assert ranking.elapsed_share(2024, date(2023, 12, 31)) == Decimal("0.00")


def test_ranking_figures_equal_progress_per_county(w):
    r = ranking.build(w.agreement, ranking.counties_for(w.agreement), CUTOFF)
    assert [row.name for row in r.rows] == ["苍溪县", "布拖县", "昭觉县"]  # code order: 510824, 513429, 513431
    assert r.elapsed == Decimal("49.73") and r.cutoff == CUTOFF
    for row in r.rows:
        county = db.session.get(type(w.zhaojue), row.unit_id)
        expected = progress(w.agreement, county, CUTOFF)
        assert [c.code for c in r.columns] == [p.code for p in expected]
        for cell, p in zip(row.cells, expected, strict=True):
            assert (cell.target, cell.actual, cell.rate, cell.pending) == (p.target, p.actual, p.rate, p.pending)
            assert cell.behind == (p.rate is not None and p.rate < r.elapsed)
    by_name = {row.name: row for row in r.rows}
    fiscal = [c.code for c in r.columns].index("fiscal_funds")
    assert by_name["昭觉县"].cells[fiscal].rate == Decimal("66.67") and not by_name["昭觉县"].cells[fiscal].behind
    assert by_name["布拖县"].cells[fiscal].rate == Decimal("10.00") and by_name["布拖县"].cells[fiscal].behind
    assert by_name["苍溪县"].cells[fiscal].target is None and not by_name["苍溪县"].cells[fiscal].behind


def test_a_cutoff_past_the_year_is_the_years_end(w):
    r = ranking.build(w.agreement, ranking.counties_for(w.agreement), date(2025, 3, 1))
    assert r.cutoff == date(2024, 12, 31) and r.elapsed == Decimal("100.00")


def test_sorting_puts_the_counties_behind_first(w):
    r = ranking.build(w.agreement, ranking.counties_for(w.agreement), CUTOFF)
    assert r.sorted("behind")[0].name == "布拖县"
    assert [x.name for x in r.sorted("fiscal_funds")] == ["布拖县", "昭觉县", "苍溪县"]  # no rate goes last
    assert [x.name for x in r.sorted("-fiscal_funds")] == ["昭觉县", "布拖县", "苍溪县"]
    assert [x.name for x in r.sorted("-code")] == ["昭觉县", "布拖县", "苍溪县"]


def test_prefecture_rows_sum_county_targets_and_count_the_prefecture(w):
    r = ranking.build(w.agreement, ranking.counties_for(w.agreement), CUTOFF, level="prefecture")
    assert [row.name for row in r.rows] == ["广元市", "凉山彝族自治州"]
    liangshan = r.rows[1]
    assert liangshan.summed_targets
    fiscal = [c.code for c in r.columns].index("fiscal_funds")
    assert liangshan.cells[fiscal].target == parse_wan("1015")
    own = {p.code: p for p in progress(w.agreement, w.liangshan, CUTOFF)}
    assert liangshan.cells[fiscal].actual == own["fiscal_funds"].actual == parse_wan("110")


def test_rows_follow_each_roles_scope(w):
    yuyao_liaison = make_user(Role.LIAISON, w.yuyao, username="yuyao")
    guangyuan = make_user(Role.PREFECTURE, w.guangyuan, username="guangyuan")
    expected = {
        w.admin: ["苍溪县", "布拖县", "昭觉县"],
        w.province: ["苍溪县", "布拖县", "昭觉县"],
        w.prefecture: ["布拖县", "昭觉县"],
        w.reader: ["布拖县", "昭觉县"],  # a Liangshan reader
        w.county: ["昭觉县"],
        w.liaison: ["苍溪县", "布拖县", "昭觉县"],  # Zhejiang: all its pairings
        yuyao_liaison: ["昭觉县"],  # Yuyao pairs Zhaojue only
        guangyuan: ["苍溪县"],
    }
    for user, names in expected.items():
        r = ranking.for_user(w.agreement, user, CUTOFF)
        assert [row.name for row in r.rows] == names, user.username
    # A prefecture row sums whole prefectures: only for users who see the whole province.
    assert ranking.for_user(w.agreement, w.prefecture, CUTOFF, level="prefecture").level == "county"
    assert ranking.for_user(w.agreement, w.province, CUTOFF, level="prefecture").level == "prefecture"


def test_xlsx_has_the_pages_columns_and_the_users_rows(app, world, as_user):
    with app.app_context():
        _extend(world)
        n = len([i for i in db.session.scalars(sa.select(Indicator).where(Indicator.is_active.is_(True)))])
    response = as_user("prefecture").get(f"/agreements/{world.agreement_zc}/ranking.xlsx?cutoff=2024-06-30")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[:3] == ("序号", "县(市、区)", "所属市(州)") and header[-1] == "低于序时进度的指标数"
    assert len(header) == 3 + 4 * n + 1
    assert header[3:7] == (
        "财政援助资金·目标（万元）", "财政援助资金·完成（万元）", "财政援助资金·完成率(%)", "财政援助资金·序时进度(%)"
    )  # fmt: skip
    body = {row[1]: row for row in rows[1:]}
    assert set(body) == {"布拖县", "昭觉县"}  # not Guangyuan's 苍溪县
    assert body["布拖县"][3:7] == (1000, 100, 10, 49.73)
    assert body["布拖县"][0] == 1  # behind first, as the page
    assert body["昭觉县"][3:7] == (15, 10, 66.67, 49.73)


def _extend(world):
    """The test_ranking world's extra pairings and targets, on top of the committed standard world."""
    from registry.counties.models import Unit

    units = {u.id: u for u in db.session.scalars(sa.select(Unit))}
    zc = db.session.get(Agreement, world.agreement_zc)
    butuo, cixi, zhaojue, cangxi = (units[i] for i in (world.butuo, world.cixi, world.zhaojue, world.cangxi))
    pairing = make_pairing(cixi, butuo, zc.programme)
    make_pairing(cixi, cangxi, zc.programme)
    fiscal, projects = _indicator("fiscal_funds"), _indicator("project_count")
    set_targets(zc, zhaojue, {fiscal.id: parse_wan("15"), projects.id: 1}, actor=None)
    set_targets(zc, butuo, {fiscal.id: parse_wan("1000"), projects.id: 4}, actor=None)
    project = make_project(butuo, pairing, status=ProjectStatus.APPROVED)
    make_transaction(project, amount_fen=parse_wan("100"), on=date(2024, 5, 1))
    db.session.commit()


def test_page_is_sortable_marks_behind_and_keeps_to_scope(app, world, as_user):
    with app.app_context():
        _extend(world)
    client = as_user("prefecture")
    url = f"/agreements/{world.agreement_zc}/ranking?cutoff=2024-06-30"
    html = client.get(url).get_data(as_text=True)
    assert "序时进度 49.73%" in html and "布拖县" in html and "昭觉县" in html
    assert "苍溪县" not in html
    assert 'class="num behind" title="低于序时进度 49.73%">▼ 10.00%' in html
    assert "sort=fiscal_funds" in html  # headers sort
    by_rate = client.get(url + "&sort=-fiscal_funds").get_data(as_text=True)
    assert by_rate.index("昭觉县</a>") < by_rate.index("布拖县</a>")
    bad = client.get(f"/agreements/{world.agreement_zc}/ranking?cutoff=yesterday").get_data(as_text=True)
    assert "截止日期格式应为 YYYY-MM-DD" in bad
    # The province may rank prefectures; the agreement page shows the short ranking.
    province = as_user("province")
    prefectures = province.get(url + "&level=prefecture").get_data(as_text=True)
    assert "凉山彝族自治州" in prefectures and "广元市" in prefectures
    detail = province.get(f"/agreements/{world.agreement_zc}?cutoff=2024-06-30").get_data(as_text=True)
    assert "进度排名" in detail and "完整排名与导出" in detail


def test_prefecture_report_prints_the_ranking_and_a_county_report_does_not(w, app):
    from registry.reports.documents import report_html
    from registry.reports.queries import quarter_figures

    with app.test_request_context():
        html = report_html(quarter_figures(w.liangshan, Quarter.of(2024, 2)))
        assert "进度排名：2024年浙川协议" in html
        assert "序时进度 49.73%" in html
        assert "▼10.00%" in html  # Butuo's funds
        assert "苍溪县" not in html.split("进度排名")[1]  # only the prefecture's paired counties
        assert "进度排名" not in report_html(quarter_figures(w.zhaojue, Quarter.of(2024, 2)))
