"""The demo data: loads once, again without duplicates, and keeps every rule the services enforce."""

import sqlalchemy as sa

from registry.counties.models import Unit
from registry.extensions import db
from registry.pairings.services import partners_during
from registry.periods import Quarter
from registry.projects.models import FundStage, FundTransaction, Project
from registry.projects.services import check_money_rules
from tests.conftest import login


def test_demo_load_is_realistic_idempotent_and_consistent(app, runner):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "演示账号（密码均为 xiezuo-demo-2026）" in result.output and "zhejiang" in result.output
    again = runner.invoke(args=["demo", "load"])
    assert "新增结对 0" in again.output and "项目 0 个" in again.output and "劳务协作 0 条" in again.output
    with app.app_context():
        butuo = db.session.scalar(sa.select(Unit).where(Unit.code == "513429"))
        names = lambda q: [p.east_unit.name for p in partners_during(butuo.id, Quarter.parse(q))]  # noqa: E731
        assert names("2019Q2") == ["佛山市"] and names("2024Q3") == ["慈溪市"]
        projects = db.session.scalars(sa.select(Project)).all()
        assert len(projects) > 1500
        for project in projects[::25]:
            check_money_rules(project, project.transactions)  # raises if any day pays out more than arrived
        sums = dict(
            db.session.execute(
                sa.select(FundTransaction.stage, sa.func.sum(FundTransaction.amount_fen)).group_by(
                    FundTransaction.stage
                )
            ).all()
        )
        derived = db.session.execute(
            sa.select(
                sa.func.sum(Project.planned_fen), sa.func.sum(Project.arrived_fen), sa.func.sum(Project.disbursed_fen)
            )
        ).one()
        assert tuple(derived) == (sums[FundStage.PLANNED], sums[FundStage.ARRIVED], sums[FundStage.DISBURSED])
        from registry.placements.models import Placement
        from registry.purchases.models import Purchase

        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) > 5000
        keys = db.session.scalars(sa.select(Purchase.evidence_key)).all()
        assert len(keys) == len(set(keys)) > 500


def test_demo_accounts_see_their_scope(app, runner):
    runner.invoke(args=["demo", "load"])
    client = app.test_client()
    login(client, "zhejiang", "xiezuo-demo-2026")
    listing = client.get("/pairings/?q=佛山").get_data(as_text=True)
    assert "佛山市" not in listing.split("<tbody>")[1]
    client = app.test_client()
    login(client, "zhaojue", "xiezuo-demo-2026")
    projects = client.get("/projects/").get_data(as_text=True)
    assert "昭觉县" in projects and "布拖县</td>" not in projects
