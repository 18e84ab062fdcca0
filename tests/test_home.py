"""Home pages per role: report card, 完成率 against 序时进度 and what needs doing for offices; rankings for liaisons,
the province and readers."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Agreement, Indicator
from registry.agreements.services import set_targets
from registry.auth.models import Role
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.money import parse_wan
from registry.kernel.periods import Quarter
from registry.main import views
from registry.reports.services import save_narrative
from tests.factories import make_user


class _August2024(date):
    """The home pages' "today": 15 August 2024 (the 2024 agreement's year; the last ended quarter is 2024Q2)."""

    @classmethod
    def today(cls):
        return date(2024, 8, 15)


@pytest.fixture
def home(app, world, as_user, monkeypatch):
    monkeypatch.setattr(views, "date", _August2024)
    with app.app_context():
        agreement = db.session.get(Agreement, world.agreement_zc)
        fiscal = db.session.scalar(sa.select(Indicator).where(Indicator.code == "fiscal_funds"))
        # Zhaojue: 10 万元 arrived against 100: 10%, behind 序时进度 (62.30% on 15 August 2024).
        set_targets(agreement, db.session.get(Unit, world.zhaojue), {fiscal.id: parse_wan("100")}, actor=None)
        make_user(Role.LIAISON, db.session.get(Unit, world.guangdong), username="guangdong")
        db.session.commit()

    def page(role):
        response = as_user(role).get("/")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    return page


def test_county_home_has_the_report_card_pace_and_todos(home, world):
    html = home("county")
    assert "本期季度报告 · 2024年第2季度" in html
    assert f'href="/reports/{world.zhaojue}/2024Q2"' in html and f'href="/reports/{world.zhaojue}/2024Q2.pdf"' in html
    assert "未填写" in html and "填写说明" in html
    # The card shows where the report stands in the quarter close, its due date, and the step still to take.
    assert "报送状态" in html and "草稿" in html and "截止 2024-07-10" in html and "已逾期" in html
    # The steps to take are the first to-dos (待我办理): the narrative to write, the report to submit, overdue.
    assert html.index("待我办理") < html.index("本期季度报告")
    assert "待提交" in html and "昭觉县 2024年第2季度报表" in html and "截止 2024-07-10 · 已逾期" in html
    assert "2024 年完成率对比序时进度" in html and "对比序时进度 62.30%" in html
    assert "▼ 10.00%" in html
    assert "待填写" in html and "昭觉县 2024年第2季度工作情况说明（亮点、问题、下步打算）" in html
    assert "需要关注" in html and "1 项指标低于序时进度 62.30%" in html
    assert "进度排名" not in html  # a county office sees its own figures, not other counties'


def test_a_written_narrative_shows_as_written_and_leaves_the_todos(app, home, world):
    with app.app_context():
        unit = db.session.get(Unit, world.zhaojue)
        save_narrative(unit, Quarter.of(2024, 2), {"highlights": "完成立项"}, actor=None)
        db.session.commit()
    html = home("county")
    assert "已填写" in html and "2024年第2季度工作情况说明（亮点" not in html


def test_prefecture_home_adds_its_counties_ranking(home):
    html = home("prefecture")
    assert "本期季度报告 · 2024年第2季度" in html and "凉山彝族自治州" in html
    assert "本市(州)无单列目标，目标为所辖县目标之和" in html
    assert "所辖县进度排名" in html and "昭觉县" in html
    assert "1 个县有指标低于序时进度" in html


def test_liaison_home_is_their_counties_ranking(home):
    html = home("liaison")
    assert "结对县进度排名" in html and "昭觉县" in html
    assert "苍溪县" not in html and "本期季度报告" not in html


def test_liaison_without_an_agreement_this_year_sees_the_latest_one(home):
    html = home("guangdong")
    assert "结对县进度排名" in html and "2019年粤川协议" in html and "显示最近的 2019 年" in html
    assert "苍溪县" in html


@pytest.mark.parametrize("role", ["province", "admin"])
def test_province_home_has_headline_figures_and_the_ranking(home, role):
    html = home(role)
    assert "四川省 2024 年主要指标" in html and "序时进度 62.30%" in html
    assert "各县进度排名" in html and "昭觉县" in html
    assert "本期季度报告" not in html


def test_reader_home_is_scoped_to_the_readers_unit(home):
    html = home("reader")  # a Liangshan reader
    assert "凉山彝族自治州 2024 年主要指标" in html
    assert "各县进度排名" in html and "昭觉县" in html and "苍溪县" not in html
