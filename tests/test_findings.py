"""Findings from the data: each rule fires on a constructed case and stays silent on a clean one; re-running
proposes nothing twice; staff accept a proposal into the ledger (with its records linked) or dismiss it."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from registry.auth.models import Role
from registry.findings import rules, services
from registry.findings.models import Proposal, ProposalState
from registry.findings.reminders import overdue_problems
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.problems.models import Category, Problem, Source
from registry.projects.models import FundStage, ProjectStatus
from tests.factories import ID_A, make_asset, make_placement, make_project, make_transaction, make_user

TODAY = date(2024, 12, 1)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def w(world_records):
    world = world_records
    world.county_cangxi = make_user(Role.COUNTY, world.cangxi, username="county_cangxi")
    db.session.flush()
    return world


def keys(found):
    return {f.key for f in found}


def test_funds_idle_fires_on_money_arrived_long_ago_and_not_disbursed(w):
    # project_a: 10 万元 arrived 2024-04-01, nothing disbursed: idle for more than 6 months on 2024-12-01.
    found = rules.funds_idle(TODAY, {w.zhaojue.id})
    assert keys(found) == {f"project:{w.project_a.id}"}
    item = found[0]
    assert item.amount_fen == 100_000_00 and ["fund_transactions", w.txn_a.id] in item.records
    assert ["projects", w.project_a.id] in item.records
    # Not yet six months: silent. Disbursed in full: silent.
    assert rules.funds_idle(date(2024, 9, 30), {w.zhaojue.id}) == []
    make_transaction(w.project_a, FundStage.DISBURSED, 100_000_00, on=date(2024, 11, 1))
    assert rules.funds_idle(TODAY, {w.zhaojue.id}) == []


def test_projects_late_fires_after_the_planned_finish_only_while_unfinished(w):
    late = make_project(w.zhaojue, w.a, status=ProjectStatus.IN_PROGRESS, planned_finish=date(2024, 10, 31))
    done = make_project(w.zhaojue, w.a, status=ProjectStatus.COMPLETED, planned_finish=date(2024, 10, 31))
    future = make_project(w.zhaojue, w.a, status=ProjectStatus.IN_PROGRESS, planned_finish=date(2025, 6, 30))
    found = keys(rules.projects_late(TODAY, {w.zhaojue.id}))
    assert found == {f"project:{late.id}"}
    assert f"project:{done.id}" not in found and f"project:{future.id}" not in found


def test_counted_twice_fires_on_overlapping_placements_by_two_counties(w):
    # placement_a: Zhaojue from 2024-03-01 (open). The same person placed by Butuo from 2024-06-01.
    other = make_placement(w.butuo, id_number=ID_A, start_date=date(2024, 6, 1))
    found = rules.counted_twice(TODAY)
    assert {f.unit_id for f in found} == {w.zhaojue.id, w.butuo.id}
    assert all(sorted(f.records) == sorted([["placements", w.placement_a.id], ["placements", other.id]]) for f in found)
    assert [f.unit_id for f in rules.counted_twice(TODAY, {w.zhaojue.id})] == [w.zhaojue.id]


def test_counted_twice_is_silent_when_the_periods_do_not_overlap(w):
    from registry.placements.services import update_placement

    update_placement(w.placement_a, {"end_date": date(2024, 5, 31)}, actor=None)
    make_placement(w.butuo, id_number=ID_A, start_date=date(2024, 6, 1))
    assert rules.counted_twice(TODAY) == []


def test_a_clean_registry_proposes_nothing(w):
    import io

    from registry.evidence import services as evidence
    from registry.evidence.kinds import KINDS

    make_transaction(w.project_a, FundStage.DISBURSED, 100_000_00, on=date(2024, 5, 1))
    evidence.upload(KINDS["purchases"], w.purchase_a, io.BytesIO(PDF), "发票.pdf", actor=None)
    assert all(rules.find(name, TODAY, {w.zhaojue.id}) == [] for name in rules.RULES)


def test_rerunning_proposes_nothing_twice_and_dismissed_stays_dismissed(w):
    new, total = services.run_checks(actor=w.county, today=TODAY)
    assert new == total == 2  # project_a's idle money, purchase_a without evidence (Zhaojue: the office's own)
    assert services.run_checks(actor=w.county, today=TODAY) == (0, 2)
    proposal = db.session.scalar(sa.select(Proposal).where(Proposal.rule == "funds_idle"))
    with pytest.raises(ServiceError, match="排除理由"):
        services.dismiss(proposal, " ", actor=w.county)
    services.dismiss(proposal, "资金已于 12 月拨付，凭证待补录", actor=w.county)
    assert services.run_checks(actor=None, today=TODAY)[0] == 2  # Cangxi's two, found by the system run
    assert proposal.state is ProposalState.DISMISSED
    assert db.session.scalar(sa.select(sa.func.count()).where(Proposal.rule == "funds_idle")) == 2


def test_accepting_makes_a_linked_problem(w):
    services.run_checks(actor=None, today=TODAY)
    proposal = db.session.scalar(sa.select(Proposal).where(Proposal.key == f"project:{w.project_a.id}",
                                                           Proposal.rule == "funds_idle"))  # fmt: skip
    problem = services.accept(proposal, {"responsible_unit": "县财政局", "deadline": date(2025, 3, 31)},
                              actor=w.county, today=TODAY)  # fmt: skip
    assert (problem.source, problem.category, problem.unit_id) == (Source.SELF_CHECK, Category.FUNDS, w.zhaojue.id)
    assert problem.batch == "2024年数据核查" and problem.amount_fen == 100_000_00
    assert {(k.record_type, k.record_id) for k in problem.links} == {
        ("projects", w.project_a.id),
        ("fund_transactions", w.txn_a.id),
    }
    assert proposal.state is ProposalState.ACCEPTED and proposal.problem_id == problem.id
    with pytest.raises(ServiceError, match="已纳入台账"):
        services.accept(proposal, {}, actor=w.county)


def test_deciding_stays_in_scope(w):
    services.run_checks(actor=None, today=TODAY)
    cangxi = db.session.scalar(sa.select(Proposal).where(Proposal.unit_id == w.cangxi.id))
    from registry.permissions import OutOfScope

    with pytest.raises(OutOfScope):
        services.dismiss(cangxi, "不是问题", actor=w.county)
    with pytest.raises(OutOfScope):
        services.accept(cangxi, {}, actor=w.liaison)
    assert cangxi.state is ProposalState.PROPOSED


def test_the_command_runs_the_checks(app, world, runner):
    result = runner.invoke(args=["problems", "check"])
    assert result.exit_code == 0 and "数据核查完成" in result.output
    again = runner.invoke(args=["problems", "check"])
    assert "新增 0 条" in again.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Proposal.id))) >= 2  # the world's two, and the checks'


def test_the_page_runs_and_dismisses(app, world, as_user):
    client = as_user("county")
    assert client.post("/problems/findings/run").status_code == 302
    page = client.get("/problems/findings/").get_data(as_text=True)
    assert "资金到位未拨付" in page and "纳入整改台账" in page
    with app.app_context():
        proposal = db.session.scalar(sa.select(Proposal).where(Proposal.rule == "funds_idle",
                                                               Proposal.unit_id == world.zhaojue))  # fmt: skip
        pid, version = proposal.id, proposal.version_id
    client.post(f"/problems/findings/{pid}/dismiss", data={"reason": "", "version": version})
    with app.app_context():
        assert db.session.get(Proposal, pid).state is ProposalState.PROPOSED
    client.post(f"/problems/findings/{pid}/dismiss", data={"reason": "已核实为正常", "version": version})
    with app.app_context():
        assert db.session.get(Proposal, pid).state is ProposalState.DISMISSED


def test_overdue_problems_remind_the_county_and_the_prefecture(w):
    due = overdue_problems(date(2024, 10, 1), lambda pid: f"/problems/{pid}")
    users = {d[0] for d in due if d[3] == f"/problems/{w.problem_a.id}"}
    assert users == {w.county.id, w.prefecture.id}
    assert overdue_problems(date(2024, 9, 30), lambda pid: "") == []  # on the deadline itself: not yet overdue
    assert db.session.scalar(sa.select(sa.func.count(Problem.id))) == 2


def test_purchases_without_evidence_fire_until_a_file_is_attached(w):
    import io

    from registry.evidence import services as evidence
    from registry.evidence.kinds import KINDS

    found = rules.purchases_without_evidence(TODAY, {w.zhaojue.id})
    assert [f.key for f in found] == [f"county:{w.zhaojue.id}:2024"]
    assert found[0].records == [["purchases", w.purchase_a.id]] and found[0].amount_fen == w.purchase_a.amount_fen
    assert rules.purchases_without_evidence(date(2024, 5, 20), {w.zhaojue.id}) == []  # within 30 days: not yet
    evidence.upload(KINDS["purchases"], w.purchase_a, io.BytesIO(PDF), "发票.pdf", actor=None)
    assert rules.purchases_without_evidence(TODAY, {w.zhaojue.id}) == []


def test_progress_entries_take_evidence_through_the_problems_scope(app, world, as_user):
    import io

    county = as_user("county")
    data = {"entry_on": "2024-05-01", "text": "已拨付", "version": "1"}
    assert county.post(f"/problems/{world.problem_a}/progress", data=data).status_code == 302
    with app.app_context():
        from registry.problems.models import ProgressEntry

        entry = db.session.scalar(sa.select(ProgressEntry.id).where(ProgressEntry.problem_id == world.problem_a))
    page = county.get(f"/problems/{world.problem_a}").get_data(as_text=True)
    assert f"/evidence/problem_progress/{entry}" in page
    upload = county.post(f"/evidence/problem_progress/{entry}/upload",
                         data={"file": (io.BytesIO(PDF), "凭证.pdf")}, content_type="multipart/form-data")  # fmt: skip
    assert upload.status_code == 302
    assert "附件 1" in county.get(f"/problems/{world.problem_a}").get_data(as_text=True)
    # The Zhejiang liaison (the county's partner) reads them and writes none.
    assert as_user("liaison").get(f"/evidence/problem_progress/{entry}").status_code == 200
    url, body = f"/evidence/problem_progress/{entry}/upload", {"file": (io.BytesIO(PDF), "x.pdf")}
    denied = as_user("liaison").post(url, data=body, content_type="multipart/form-data")
    assert denied.status_code == 403


def test_assets_without_caretaker_fire_on_unmanaged_assets_only(w):
    from registry.assets.models import Asset, AssetState
    from registry.assets.services import PENDING, change_state, update_asset
    from registry.projects.models import Project

    zhaojue = {w.zhaojue.id}
    assert rules.assets_without_caretaker(TODAY, zhaojue) == []  # asset_a: 管护 in place, handed over
    # The legacy path's placeholder, kept when the draft was confirmed.
    placeholder = make_asset(w.done_a, caretaker=PENDING)
    # A 待核实 draft created 2024-08-01: more than 90 days before 2024-12-01 (one of 2024-10-01 is not yet).
    stale = make_asset(w.done_a)
    recent = make_asset(w.done_a)
    db.session.execute(sa.update(Asset).where(Asset.id == stale.id)
                       .values(needs_review=True, created_at=datetime(2024, 8, 1, tzinfo=UTC)))  # fmt: skip
    db.session.execute(sa.update(Asset).where(Asset.id == recent.id)
                       .values(needs_review=True, created_at=datetime(2024, 10, 1, tzinfo=UTC)))  # fmt: skip
    # The project went to 资产已移交, then the asset's 移交 date was cleared.
    over = make_project(w.zhaojue, w.a, year=2023, status=ProjectStatus.COMPLETED)
    cleared = make_asset(over)
    db.session.execute(sa.update(Project).where(Project.id == over.id).values(status=ProjectStatus.HANDED_OVER))
    update_asset(cleared, {"handed_over_on": None}, actor=None)
    # A blank 责任人 (written outside the services) on an asset since disposed: silent.
    disposed = make_asset(w.done_a)
    disposal = {"to_state": AssetState.DISPOSED, "changed_on": date(2024, 11, 1), "note": "拆除",
                "disposal_method": "报废", "disposal_decision": "村民代表大会决议"}  # fmt: skip
    change_state(disposed, disposal, actor=None)
    db.session.execute(sa.update(Asset).where(Asset.id == disposed.id).values(caretaker_person=""))
    db.session.expire_all()

    found = rules.assets_without_caretaker(TODAY, zhaojue)
    assert [f.key for f in found] == [f"county:{w.zhaojue.id}"]
    item = found[0]
    assert sorted(item.records) == sorted(["assets", a.id] for a in (placeholder, stale, cleared))
    assert item.unit_id == w.zhaojue.id and item.amount_fen == 3 * 100_000_000
    assert item.title.startswith("昭觉县有 3 项项目资产（原值 300.00 万元）管护未落实：")
    assert "管护主体或责任人未明确 1 项" in item.title and "补录后超过 90 天仍待核实 1 项" in item.title
    assert "未填写移交日期 1 项" in item.title
    assert rules.assets_without_caretaker(TODAY, {w.cangxi.id}) == []  # asset_b is in order
    # A blank 管护主体 on an asset in use is named too.
    db.session.execute(sa.update(Asset).where(Asset.id == w.asset_a.id).values(caretaker=" "))
    assert ["assets", w.asset_a.id] in rules.assets_without_caretaker(TODAY, zhaojue)[0].records


def test_assets_proposal_is_not_repeated_and_accepting_links_the_assets(w):
    from registry.assets.services import PENDING

    first = make_asset(w.done_a, caretaker_person=PENDING)
    second = make_asset(w.done_a, caretaker=PENDING)
    new, _ = services.run_checks(actor=w.county, today=TODAY)
    assert new == 3  # with project_a's idle money and purchase_a without evidence
    assert services.run_checks(actor=w.county, today=TODAY)[0] == 0
    proposals = db.session.scalars(sa.select(Proposal).where(Proposal.rule == "assets_without_caretaker")).all()
    assert [(p.key, p.unit_id) for p in proposals] == [(f"county:{w.zhaojue.id}", w.zhaojue.id)]
    problem = services.accept(proposals[0], {"responsible_unit": "县农业农村局", "deadline": date(2025, 3, 31)},
                              actor=w.county, today=TODAY)  # fmt: skip
    assert problem.category is Category.ASSET and problem.unit_id == w.zhaojue.id
    assert {(k.record_type, k.record_id) for k in problem.links} == {("assets", first.id), ("assets", second.id)}
    assert services.run_checks(actor=w.county, today=TODAY)[0] == 0  # accepted: found again, not proposed again
    assert proposals[0].state is ProposalState.ACCEPTED
