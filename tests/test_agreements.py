"""Agreements: targets, and actual figures with 完成率 computed from records, by cut-off date and programme."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Indicator, Target
from registry.agreements.services import create_agreement, create_entry, progress, set_targets
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.money import parse_wan, rate
from registry.kernel.services import ServiceError
from registry.projects.models import FundStage, ProjectStatus
from tests.conftest import login
from tests.factories import make_pairing, make_project, make_transaction


def _indicator(code):
    return db.session.scalar(sa.select(Indicator).where(Indicator.code == code))


def _by_code(rows):
    return {r.code: r for r in rows}


@pytest.fixture
def butuo(world_records):
    """布拖县 changed partner in 2021: Foshan's Shunde (粤川) until 31 March, Ningbo's Cixi (浙川) from 1 April."""
    w = world_records
    w.shunde_butuo = make_pairing(w.shunde, w.butuo, w.yc, valid_from=date(2016, 8, 1), valid_to=date(2021, 3, 31))
    w.cixi_butuo = make_pairing(w.cixi, w.butuo, w.zc, valid_from=date(2021, 4, 1))
    w.zc2021 = create_agreement({"programme_id": w.zc.id, "year": 2021, "title": "2021年浙川协议"}, actor=None)
    w.yc2021 = create_agreement({"programme_id": w.yc.id, "year": 2021, "title": "2021年粤川协议"}, actor=None)
    fiscal, projects = _indicator("fiscal_funds"), _indicator("project_count")
    set_targets(w.zc2021, w.butuo, {fiscal.id: parse_wan("3900"), projects.id: 4}, actor=None)
    set_targets(w.yc2021, w.butuo, {fiscal.id: parse_wan("500")}, actor=None)
    old = make_project(
        w.butuo, w.shunde_butuo, year=2021, planned_start=date(2021, 1, 15), status=ProjectStatus.APPROVED
    )
    make_transaction(old, FundStage.ARRIVED, parse_wan("200"), date(2021, 2, 1))
    new = make_project(w.butuo, w.cixi_butuo, year=2021, planned_start=date(2021, 5, 1))
    from registry.projects.services import change_status

    change_status(new, ProjectStatus.APPROVED, date(2021, 5, 10), actor=None)
    make_transaction(new, FundStage.ARRIVED, parse_wan("1950"), date(2021, 6, 1))
    make_transaction(new, FundStage.ARRIVED, parse_wan("1000"), date(2021, 10, 1))
    make_transaction(new, FundStage.DISBURSED, parse_wan("900"), date(2021, 11, 1))
    return w


def test_rates_by_cutoff_and_programme_across_a_change_of_partner(butuo):
    w = butuo
    june = _by_code(progress(w.zc2021, w.butuo, date(2021, 6, 30)))
    assert june["fiscal_funds"].actual == parse_wan("1950") and str(june["fiscal_funds"].rate) == "50.00"
    year = _by_code(progress(w.zc2021, w.butuo, date(2021, 12, 31)))
    assert year["fiscal_funds"].actual == parse_wan("2950") and str(year["fiscal_funds"].rate) == "75.64"
    # The Guangdong money of January–March counts against the 粤川 agreement only.
    guangdong = _by_code(progress(w.yc2021, w.butuo, date(2021, 12, 31)))
    assert guangdong["fiscal_funds"].actual == parse_wan("200") and str(guangdong["fiscal_funds"].rate) == "40.00"
    # 项目数 follows the approval date.
    assert _by_code(progress(w.zc2021, w.butuo, date(2021, 5, 9)))["project_count"].actual == 0
    assert year["project_count"].actual == 1 and str(year["project_count"].rate) == "25.00"
    # A cut-off past the year end is the year end.
    assert _by_code(progress(w.zc2021, w.butuo, date(2022, 6, 30)))["fiscal_funds"].actual == parse_wan("2950")


def test_province_figures_sum_the_counties_and_so_do_its_targets(butuo):
    """The province has no target of its own: it reports its counties' sum (#24 section 2), and its rate against it."""
    w = butuo
    rows = _by_code(progress(w.zc2021, w.sichuan, date(2021, 12, 31)))
    fiscal = rows["fiscal_funds"]
    assert fiscal.actual == parse_wan("2950") and fiscal.target == parse_wan("3900") and fiscal.summed_target
    assert fiscal.rate == rate(parse_wan("2950"), parse_wan("3900"))


def test_every_built_in_indicator_is_computed_and_a_missing_source_says_so(butuo, monkeypatch):
    rows = _by_code(progress(butuo.zc2021, butuo.butuo, date(2021, 12, 31)))
    assert all(r.available for r in rows.values())
    assert rows["labour_total"].actual == 0 and rows["labour_lifted"].is_part
    from registry.agreements import calculators

    monkeypatch.delitem(calculators.CALCULATORS, "consumption")
    consumption = _by_code(progress(butuo.zc2021, butuo.butuo, date(2021, 12, 31)))["consumption"]
    assert consumption.actual is None and consumption.rate is None and consumption.pending == "暂无统计来源"


def test_entries_feed_enterprise_and_investment_indicators(butuo):
    w = butuo
    enterprises, investment = _indicator("enterprises"), _indicator("investment")
    for name in ("宁波甲公司", "宁波乙公司", "宁波甲公司"):
        create_entry({"indicator_id": enterprises.id, "county_id": w.butuo.id, "pairing_id": w.cixi_butuo.id,
                      "occurred_on": date(2021, 7, 1), "value": 1, "subject": name}, actor=None)  # fmt: skip
    create_entry({"indicator_id": investment.id, "county_id": w.butuo.id, "pairing_id": w.cixi_butuo.id,
                  "occurred_on": date(2021, 8, 1), "value": parse_wan("1200.5")}, actor=None)  # fmt: skip
    rows = _by_code(progress(w.zc2021, w.butuo, date(2021, 12, 31)))
    assert rows["enterprises"].actual == 2 and rows["investment"].actual == parse_wan("1200.5")
    with pytest.raises(ServiceError, match="自动统计"):
        create_entry(
            {"indicator_id": _indicator("fiscal_funds").id, "county_id": w.butuo.id, "pairing_id": w.cixi_butuo.id,
             "occurred_on": date(2021, 7, 1), "value": 1},
            actor=None,
        )  # fmt: skip
    with pytest.raises(ServiceError, match="不是布拖县的有效结对"):
        create_entry({"indicator_id": enterprises.id, "county_id": w.butuo.id, "pairing_id": w.shunde_butuo.id,
                      "occurred_on": date(2021, 7, 1), "value": 1}, actor=None)  # fmt: skip


def test_targets_are_audited_and_removable(butuo):
    w = butuo
    fiscal = _indicator("fiscal_funds")
    changes = set_targets(w.zc2021, w.butuo, {fiscal.id: parse_wan("4000")}, actor=w.admin)
    assert changes == {"财政援助资金": [parse_wan("3900"), parse_wan("4000")]}
    set_targets(w.zc2021, w.butuo, {fiscal.id: None}, actor=w.admin)
    db.session.flush()
    remaining = sa.select(sa.func.count(Target.id)).where(
        Target.indicator_id == fiscal.id, Target.agreement_id == w.zc2021.id
    )
    assert db.session.scalar(remaining) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "targets", AuditEvent.actor_id == w.admin.id)
        )
        == 2
    )
    with pytest.raises(ServiceError, match="目标只能分解到四川"):
        set_targets(w.zc2021, w.cixi, {fiscal.id: 1}, actor=None)
    with pytest.raises(ServiceError, match="已经存在"):
        create_agreement({"programme_id": w.zc.id, "year": 2021, "title": "重复"}, actor=None)


def test_pages_show_targets_and_rates(app, client, world):
    login(client, "province")
    response = client.post(
        f"/agreements/{world.agreement_zc}/targets/{world.zhaojue}", data={"t1": "20", "t2": "2", "t8": "abc"}
    )
    assert "不是有效的整数" in response.get_data(as_text=True) or "Not a valid integer" not in response.get_data(
        as_text=True
    )
    response = client.post(f"/agreements/{world.agreement_zc}/targets/{world.zhaojue}", data={"t1": "20", "t2": "2"})
    assert response.status_code in (302, 303)
    page = client.get(f"/units/{world.zhaojue}?year=2024").get_data(as_text=True)
    # 10 万元 arrived of a 20 万元 target; one of two projects approved.
    assert "2024年浙川协议" in page and "50.00%" in page
    detail = client.get(f"/agreements/{world.agreement_zc}?cutoff=2024-12-31").get_data(as_text=True)
    # 10 万元 at province level: under 1 亿元 the row stays in 万元 (never 0.0010 or 0.00 亿元).
    province = detail.split("全省完成情况（截至 2024-12-31）")[1]
    assert "<td>万元</td>" in province and "10.00" in province and "亿元" not in province
    assert "格式应为" in client.get(f"/agreements/{world.agreement_zc}?cutoff=bad").get_data(as_text=True)
    text = client.post(f"/agreements/{world.agreement_zc}/targets/{world.zhaojue}", data={"t1": "1.1234567"}).get_data(
        as_text=True
    )
    assert "最多保留六位小数" in text


def test_liaison_sees_only_its_provinces_agreements(app, client, world):
    login(client, "liaison")
    text = client.get("/agreements/").get_data(as_text=True)
    assert "2024年浙川协议" in text and "2019年粤川协议" not in text
