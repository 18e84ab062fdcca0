"""The demo data: loads once, again without duplicates, and keeps every rule the services enforce."""

import pytest
import sqlalchemy as sa

from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.pairings.services import partners_during
from registry.projects.models import FundStage, FundTransaction, Project, ProjectStatus
from registry.projects.services import check_money_rules
from tests.conftest import login

#: The suite loads the demo once per process (conftest.DemoDatabase); modules using it share one xdist worker.
pytestmark = pytest.mark.xdist_group("demo")


def test_demo_load_is_realistic_idempotent_and_consistent(demo_database, demo_app):
    """The demo takes most of a minute to load (every record through its service): the suite loads it once
    (``flask demo load`` into an empty database, whose output is checked here) and this test works on a copy of
    it, loading it again, checking scope, and adding records of every kind after it."""
    app, runner = demo_app, demo_app.test_cli_runner()
    output = demo_database.output
    assert "演示账号（密码均为 xiezuo-demo-2026）" in output and "zhejiang" in output
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
    _accounts_see_their_scope(app)
    _every_kind_of_record_can_be_added_after_the_demo(app, runner)


def _accounts_see_their_scope(app):
    client = app.test_client()
    login(client, "zhejiang", "xiezuo-demo-2026")
    listing = client.get("/pairings/?q=佛山").get_data(as_text=True)
    assert "佛山市" not in listing.split("<tbody>")[1]
    client = app.test_client()
    login(client, "zhaojue", "xiezuo-demo-2026")
    projects = client.get("/projects/").get_data(as_text=True)
    assert "昭觉县" in projects and "布拖县</td>" not in projects


def _every_kind_of_record_can_be_added_after_the_demo(app, runner):
    """The demo inserts rows with explicit ids; the id sequences (PostgreSQL) must have moved past them."""
    from datetime import date

    from registry.agreements.models import Indicator
    from registry.agreements.services import create_agreement, create_entry
    from registry.auth.models import Role
    from registry.kernel import idnumbers
    from registry.pairings.models import Pairing
    from registry.purchases.models import Channel
    from tests.factories import (
        make_exchange,
        make_local,
        make_pairing,
        make_placement,
        make_programme,
        make_project,
        make_purchase,
        make_transaction,
        make_user,
    )

    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        zhaojue = db.session.scalar(sa.select(Unit).where(Unit.code == "513431"))
        cixi = db.session.scalar(sa.select(Unit).where(Unit.code == "330282"))
        east = partners_during(zhaojue.id, Quarter.parse("2024Q2"))[0].east_unit
        pairing = db.session.scalar(
            sa.select(Pairing).where(Pairing.east_unit_id == east.id, Pairing.west_unit_id == zhaojue.id)
        )
        project = make_project(zhaojue, pairing, code="XM-AFTER-DEMO", status=ProjectStatus.IN_PROGRESS)
        make_transaction(project)
        body = "51343119610101001"
        make_placement(zhaojue, id_number=body + idnumbers.check_digit(body), start_date=date(2024, 6, 1))
        channel = db.session.scalar(sa.select(sa.func.min(Channel.id)))
        make_purchase(zhaojue, evidence_no="FP-AFTER-DEMO", channel_id=channel)
        make_exchange(zhaojue)
        school = make_local(zhaojue, "演示后新增学校")
        programme = make_programme("演示后新增协作")
        make_pairing(make_local(cixi, "慈溪演示后学校"), school, programme, valid_from=date(2024, 1, 1))
        agreement = create_agreement({"programme_id": programme.id, "year": 2024, "title": "演示后协议"}, actor=None)
        indicator = db.session.scalar(sa.select(Indicator).where(Indicator.code == "enterprises"))
        create_entry({"indicator_id": indicator.id, "county_id": zhaojue.id, "pairing_id": pairing.id,
                      "occurred_on": date(2024, 5, 2), "value": 1, "subject": "演示后企业"}, actor=None)  # fmt: skip
        make_user(Role.COUNTY, zhaojue, username="after_demo")
        db.session.commit()
        assert agreement.id and project.id > 1500
        zhaojue_id, pairing_id = zhaojue.id, pairing.id
    # And through the page, as the demo's county office would.
    client = app.test_client()
    login(client, "zhaojue", "xiezuo-demo-2026")
    data = {"name": "演示后页面项目", "county_id": zhaojue_id, "pairing_id": pairing_id, "year": "2024",
            "category": "industry", "delivery_mode": "cheque", "funding_level": "county",
            "planned_start": "2024-03-01"}  # fmt: skip
    assert client.post("/projects/new", data=data).status_code == 302
