"""Findings grouped so an office can work through them: the people two counties count are one proposal per county
pair and month listing them (masked identity numbers only); idle money one proposal per project; re-runs update
the open proposal (fixed records leave it, a fixed group goes) and never bring back a decided group unless new
records appear; a county sees only its own groups."""

import csv
import io
import json
from datetime import date

import pytest
import sqlalchemy as sa

from registry.findings import services
from registry.findings.models import Proposal, ProposalRecord, ProposalState
from registry.kernel.extensions import db
from registry.kernel.idnumbers import check_digit
from registry.placements.models import Placement
from registry.placements.services import update_placement
from registry.projects.models import FundStage
from tests.factories import make_placement, make_transaction

TODAY = date(2024, 12, 1)


def id_number(n: int) -> str:
    first = f"51343119900101{n:03d}"
    return first + check_digit(first)


def twice(w, n: int, *, butuo_from=date(2024, 6, 1), zhaojue_from=date(2024, 3, 1)):
    """Person ``n`` placed by Zhaojue (open) and by Butuo over an overlapping period: (Zhaojue's, Butuo's)."""
    number = id_number(n)
    own = make_placement(w.zhaojue, id_number=number, person_name=f"测试{n}", start_date=zhaojue_from)
    other = make_placement(w.butuo, id_number=number, person_name=f"测试{n}", start_date=butuo_from)
    return own, other


def proposals(rule="counted_twice", **where):
    stmt = sa.select(Proposal).where(Proposal.rule == rule, *(getattr(Proposal, k) == v for k, v in where.items()))
    return db.session.scalars(stmt.order_by(Proposal.unit_id, Proposal.key, Proposal.id)).all()


def named(proposal) -> set:
    rows = db.session.execute(sa.select(ProposalRecord.record_type, ProposalRecord.record_id)
                              .where(ProposalRecord.proposal_id == proposal.id))  # fmt: skip
    return {tuple(r) for r in rows}


@pytest.fixture
def w(world_records):
    return world_records


def test_people_in_two_counties_are_one_proposal_per_county_pair_and_month(w):
    june = [twice(w, n) for n in range(1, 6)]  # five people, both counties from June 2024
    august = twice(w, 9, butuo_from=date(2024, 8, 15))  # a sixth, from August
    services.run_checks(actor=None, today=TODAY)
    found = proposals()
    z, b = w.zhaojue.id, w.butuo.id
    # One proposal per county pair and month found (December 2024), listing all six people.
    assert [(p.unit_id, p.key, p.record_count) for p in found] == [
        (z, f"pair:{z}:{b}:2024-12", 6), (b, f"pair:{b}:{z}:2024-12", 6),
    ]  # fmt: skip
    zhaojue = found[0]
    # Its records: Zhaojue's six placements, and Butuo's of the same people beside them.
    assert named(zhaojue) == {("placements", p.id) for pair in [*june, august] for p in pair}
    assert zhaojue.title == "昭觉县有 6 人同一时期也被布拖县计入劳务协作就业（2024年12月核查发现）"
    # Next month: the six stay where they are; a person found then is the next month's proposal of the pair.
    later = twice(w, 12)
    services.run_checks(actor=None, today=date(2025, 1, 5))
    found = proposals(unit_id=z)
    assert [(p.key, p.record_count) for p in found] == [(f"pair:{z}:{b}:2024-12", 6), (f"pair:{z}:{b}:2025-01", 1)]
    assert named(found[1]) == {("placements", later[0].id), ("placements", later[1].id)}
    # A third county: its own pair.
    from registry.counties.models import UnitKind
    from tests.factories import make_division

    meigu = make_division("513436", "美姑县", UnitKind.COUNTY, w.liangshan)
    make_placement(meigu, id_number=id_number(1), person_name="测试1", start_date=date(2024, 7, 1))
    services.run_checks(actor=None, today=date(2025, 1, 5))
    keys = {p.key for p in proposals(unit_id=z)}
    assert keys == {f"pair:{z}:{b}:2024-12", f"pair:{z}:{b}:2025-01", f"pair:{z}:{meigu.id}:2025-01"}


def test_rerunning_updates_the_open_proposal_and_adds_nothing(w):
    for n in range(1, 4):
        twice(w, n)
    first = services.run_checks(actor=None, today=TODAY)
    before = {(p.id, p.key, p.record_count, frozenset(named(p))) for p in proposals()}
    assert services.run_checks(actor=None, today=TODAY) == (0, first[1])
    assert {(p.id, p.key, p.record_count, frozenset(named(p))) for p in proposals()} == before
    # A new person of the same month joins the same open proposal.
    new_own, new_other = twice(w, 4)
    assert services.run_checks(actor=None, today=TODAY)[0] == 0
    zhaojue = proposals(unit_id=w.zhaojue.id)
    assert len(zhaojue) == 1 and zhaojue[0].record_count == 4
    assert {("placements", new_own.id), ("placements", new_other.id)} <= named(zhaojue[0])


def test_a_fixed_record_leaves_its_proposal_and_a_fixed_group_goes(w):
    pairs = [twice(w, n) for n in range(1, 4)]
    services.run_checks(actor=None, today=TODAY)
    (zhaojue,) = proposals(unit_id=w.zhaojue.id)
    pid, version = zhaojue.id, zhaojue.version_id
    # Zhaojue ends person 1's placement before Butuo's began: no longer counted twice.
    update_placement(pairs[0][0], {"end_date": date(2024, 5, 31)}, actor=None)
    services.run_checks(actor=None, today=TODAY)
    zhaojue = db.session.get(Proposal, pid)
    assert zhaojue.record_count == 2 and zhaojue.version_id == version + 1
    assert ("placements", pairs[0][0].id) not in named(zhaojue)
    assert ("placements", pairs[0][1].id) not in named(zhaojue)  # Butuo's placement of that person left too
    assert "有 2 人" in zhaojue.title
    # Every record fixed: the open proposal goes (Butuo's too).
    for own, _other in pairs[1:]:
        update_placement(own, {"end_date": date(2024, 5, 31)}, actor=None)
    services.run_checks(actor=None, today=TODAY)
    assert proposals() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProposalRecord)
                             .where(ProposalRecord.proposal_id == pid)) == 0  # fmt: skip


def test_a_decided_group_comes_back_only_with_new_records(w):
    for n in range(1, 4):
        twice(w, n)
    services.run_checks(actor=w.county, today=TODAY)
    (zhaojue,) = proposals(unit_id=w.zhaojue.id)
    services.dismiss(zhaojue, "已与布拖县核实，分别计入不同项目", actor=w.county)
    assert services.run_checks(actor=w.county, today=TODAY)[0] == 0
    assert [p.state for p in proposals(unit_id=w.zhaojue.id)] == [ProposalState.DISMISSED]
    # A new person in the same group: a new open proposal naming only the new records.
    new_own, new_other = twice(w, 7)
    assert services.run_checks(actor=w.county, today=TODAY)[0] == 1
    dismissed, fresh = proposals(unit_id=w.zhaojue.id)
    assert (dismissed.state, fresh.state) == (ProposalState.DISMISSED, ProposalState.PROPOSED)
    assert dismissed.key == fresh.key and dismissed.record_count == 3
    assert named(fresh) == {("placements", new_own.id), ("placements", new_other.id)}
    assert fresh.record_count == 1 and "有 1 人" in fresh.title


def test_idle_money_is_one_proposal_per_project_naming_its_arrivals(w):
    # project_a: 10 万元 arrived 2024-04-01; two more arrivals and a part disbursed.
    second = make_transaction(w.project_a, FundStage.ARRIVED, 50_000_00, on=date(2024, 5, 1))
    make_transaction(w.project_a, FundStage.ARRIVED, 30_000_00, on=date(2024, 11, 1))  # within six months
    make_transaction(w.project_a, FundStage.DISBURSED, 20_000_00, on=date(2024, 6, 1))
    services.run_checks(actor=None, today=TODAY)
    found = proposals("funds_idle", unit_id=w.zhaojue.id)
    assert [(p.key, p.amount_fen, p.record_count) for p in found] == [(f"project:{w.project_a.id}", 130_000_00, 2)]
    assert named(found[0]) == {("projects", w.project_a.id), ("fund_transactions", w.txn_a.id),
                               ("fund_transactions", second.id)}  # fmt: skip
    assert "13.00 万元" in found[0].title and "2 笔到位" in found[0].title
    # Dismissed, it stays dismissed while the same arrivals lie idle.
    services.dismiss(found[0], "资金已拨付，凭证待补录", actor=None)
    services.run_checks(actor=None, today=TODAY)
    assert [p.state for p in proposals("funds_idle", unit_id=w.zhaojue.id)] == [ProposalState.DISMISSED]


def test_a_county_sees_only_its_own_groups_and_masked_numbers(app, world, as_user):
    with app.app_context():
        from registry.counties.models import Unit

        zj, bt = db.session.get(Unit, world.zhaojue), db.session.scalar(sa.select(Unit).where(Unit.code == "513429"))
        numbers = []
        for n in range(1, 4):
            numbers.append(id_number(n))
            make_placement(zj, id_number=numbers[-1], person_name=f"测试{n}", start_date=date(2024, 3, 1))
            make_placement(bt, id_number=numbers[-1], person_name=f"测试{n}", start_date=date(2024, 6, 1))
        services.run_checks(actor=None, today=TODAY)
        db.session.commit()
        own = db.session.scalar(sa.select(Proposal.id).where(Proposal.rule == "counted_twice",
                                                             Proposal.unit_id == zj.id))  # fmt: skip
        other = db.session.scalar(sa.select(Proposal.id).where(Proposal.rule == "counted_twice",
                                                               Proposal.unit_id == bt.id))  # fmt: skip
        masked = db.session.scalars(
            sa.select(Placement.id_masked).where(
                Placement.origin_county_id == zj.id, Placement.person_name.like("测试%")
            )
        ).all()
        assert len(masked) == 3
    county = as_user("county")  # Zhaojue's office
    page = county.get("/problems/findings/?rule=counted_twice").get_data(as_text=True)
    assert "昭觉县有 3 人" in page and "布拖县有 3 人" not in page
    assert county.get(f"/problems/findings/{other}").status_code == 404
    detail = county.get(f"/problems/findings/{own}").get_data(as_text=True)
    assert all(m in detail for m in masked) and not any(n in detail for n in numbers)
    download = county.get(f"/problems/findings/{own}?export=csv")
    text = download.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["类别", "姓名", "身份证号"]
    assert {r[2] for r in rows[1:] if r[0] == "劳务协作"} >= set(masked)
    assert not any(n in text for n in numbers)
    # The province office sees both groups.
    province = as_user("province").get("/problems/findings/?rule=counted_twice").get_data(as_text=True)
    assert "昭觉县有 3 人" in province and "布拖县有 3 人" in province


def test_an_office_run_touches_only_its_counties(w):
    twice(w, 1)
    services.run_checks(actor=None, today=TODAY)
    butuo = proposals(unit_id=w.butuo.id)[0]
    # Zhaojue's office runs the checks after Butuo's record was fixed: Butuo's proposal is not its to drop.
    update_placement(db.session.get(Placement, next(i for t, i in named(butuo) if db.session.get(Placement, i)
                                                    .origin_county_id == w.butuo.id)),
                     {"end_date": date(2024, 6, 2)}, actor=None)  # fmt: skip
    services.run_checks(actor=w.county, today=TODAY)
    assert [p.unit_id for p in proposals()] == [w.zhaojue.id, w.butuo.id]


def test_the_migration_groups_the_per_person_proposals(empty_database):
    """Proposals of the per-person era: records become rows; the open per-person ones of one county pair and
    month merge into one, a decided one keeps its decision under the group's key."""
    from datetime import datetime

    from flask_migrate import upgrade

    from registry import create_app
    from tests.conftest import make_test_config

    app = create_app(make_test_config(empty_database))
    with app.app_context():
        upgrade(revision="a6c1d2e3f4b5")
        now = datetime(2026, 11, 20, 1, 0)
        with db.engine.begin() as conn:
            for uid, name in ((1, "昭觉县"), (2, "布拖县")):
                conn.execute(sa.text(
                    "INSERT INTO units (id, name, full_name, kind, side, is_active, note, created_at, updated_at,"
                    " version_id) VALUES (:i, :n, :n, 'county', 'west', true, '', :t, :t, 1)"),
                    {"i": uid, "n": name, "t": now})  # fmt: skip
            old = [  # id, key, state, reason, records
                (1, "person:aaa:1:2", "proposed", "", [["placements", 11], ["placements", 21]]),
                (2, "person:bbb:1:2", "proposed", "", [["placements", 12], ["placements", 22]]),
                (3, "person:ccc:1:2", "dismissed", "已核实", [["placements", 13], ["placements", 23]]),
                (4, "person:aaa:2:1", "proposed", "", [["placements", 21], ["placements", 11]]),
                (5, "project:7", "proposed", "", [["projects", 7], ["fund_transactions", 70]]),
            ]
            for pid, key, state, reason, named_ in old:
                rule = "funds_idle" if key.startswith("project") else "counted_twice"
                unit = 2 if key.endswith(":2:1") else 1
                conn.execute(sa.text(
                    "INSERT INTO problem_proposals (id, rule, key, unit_id, title, amount_fen, records, state, reason,"
                    " found_at, seen_at, created_at, updated_at, version_id) VALUES (:i, :r, :k, :u, 't', 0, :rec,"
                    " :s, :why, :t, :t, :t, :t, 1)"),
                    {"i": pid, "r": rule, "k": key, "u": unit, "rec": json.dumps(named_), "s": state, "why": reason,
                     "t": now})  # fmt: skip
        upgrade(revision="a76555f3f1af")
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, key, state, record_count FROM problem_proposals ORDER BY id"))
            assert [tuple(r) for r in rows] == [
                (1, "pair:1:2:2026-11", "proposed", 4), (3, "pair:1:2:2026-11", "dismissed", 2),
                (4, "pair:2:1:2026-11", "proposed", 2), (5, "project:7", "proposed", 2),
            ]  # fmt: skip
            merged = conn.execute(sa.text("SELECT record_id FROM problem_proposal_records WHERE proposal_id = 1"))
            assert sorted(r[0] for r in merged) == [11, 12, 21, 22]
        # And back: the records a JSON list again, (rule, key) unique again.
        from flask_migrate import downgrade

        downgrade(revision="a6c1d2e3f4b5")
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, key, records FROM problem_proposals ORDER BY id")).all()
        assert [(i, k) for i, k, _ in rows] == [(1, "pair:1:2:2026-11"), (3, "pair:1:2:2026-11#3"),
                                                (4, "pair:2:1:2026-11"), (5, "project:7")]  # fmt: skip
        first = rows[0][2]
        first = json.loads(first) if isinstance(first, str) else first
        assert sorted(i for _t, i in first) == [11, 12, 21, 22]
        db.engine.dispose()
