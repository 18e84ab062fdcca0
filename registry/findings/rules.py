"""The checks: each reads one stream's records and returns what looks like a problem, naming the records.

A rule is ``(today, counties) -> list[Found]``; ``counties`` (ids) limits it to an office's own counties, None
checks everything (the periodic run). Each stays silent on records in order; tests build a case for each.
The assets rule reads the assets stream through its ``queries`` module (``assets.queries.unmanaged``).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app

from registry.assets import queries as assets
from registry.counties.models import Unit
from registry.evidence import services as evidence
from registry.extensions import db
from registry.money import wan
from registry.placements.models import Placement
from registry.placements.services import possible_duplicates
from registry.projects.models import FundStage, FundTransaction, Project, ProjectStatus
from registry.purchases.models import Purchase

#: Records a proposal names at most (a county's year of purchases without evidence may be many).
MAX_RECORDS = 200


@dataclass
class Found:
    key: str
    unit_id: int
    title: str
    records: list = field(default_factory=list)
    amount_fen: int = 0


def months_before(day: date, months: int) -> date:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)


def _among(column, counties):
    return sa.true() if counties is None else column.in_(counties)


def funds_idle(today: date, counties=None) -> list[Found]:
    """资金到位超过 N 个月未拨付: money that arrived at least N months ago (FINDINGS_IDLE_MONTHS) is more than
    everything disbursed since, on a project not terminated."""
    months = int(current_app.config.get("FINDINGS_IDLE_MONTHS", 6))
    cutoff = months_before(today, months)
    old_arrived = sa.func.coalesce(sa.func.sum(sa.case(
        (sa.and_(FundTransaction.stage == FundStage.ARRIVED, FundTransaction.occurred_on <= cutoff),
         FundTransaction.amount_fen), else_=0)), 0)  # fmt: skip
    disbursed = sa.func.coalesce(sa.func.sum(sa.case(
        (FundTransaction.stage == FundStage.DISBURSED, FundTransaction.amount_fen), else_=0)), 0)  # fmt: skip
    rows = db.session.execute(
        sa.select(Project.id, Project.code, Project.name, Project.county_id, old_arrived, disbursed)
        .join(FundTransaction, FundTransaction.project_id == Project.id)
        .where(Project.status != ProjectStatus.TERMINATED, _among(Project.county_id, counties))
        .group_by(Project.id, Project.code, Project.name, Project.county_id)
        .having(old_arrived > disbursed)
    ).all()
    found = []
    for project_id, code, name, county_id, arrived, spent in rows:
        arrivals = db.session.scalars(
            sa.select(FundTransaction.id).where(
                FundTransaction.project_id == project_id,
                FundTransaction.stage == FundStage.ARRIVED,
                FundTransaction.occurred_on <= cutoff,
            )  # fmt: skip
        ).all()
        idle = int(arrived) - int(spent)
        found.append(Found(
            key=f"project:{project_id}", unit_id=county_id, amount_fen=idle,
            title=f"项目 {code} {name}：{cutoff} 前到位的资金中有 {wan(idle)} 万元超过 {months} 个月未拨付",
            records=[["projects", project_id], *(["fund_transactions", t] for t in arrivals)],
        ))  # fmt: skip
    return found


#: Statuses of a project still to be finished.
UNFINISHED = (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.SUSPENDED)


def projects_late(today: date, counties=None) -> list[Found]:
    """项目超过计划完工日期未完工: a project approved, under way or suspended after its planned finish."""
    stmt = sa.select(Project).where(
        Project.status.in_(UNFINISHED), Project.planned_finish.is_not(None), Project.planned_finish < today,
        _among(Project.county_id, counties),
    )  # fmt: skip
    return [
        Found(
            key=f"project:{p.id}",
            unit_id=p.county_id,
            title=f"项目 {p.code} {p.name}：计划 {p.planned_finish} 完工，现仍为“{p.status.label}”",
            records=[["projects", p.id]],
        )  # fmt: skip
        for p in db.session.scalars(stmt.order_by(Project.id))
    ]


def _overlap(a: Placement, b: Placement) -> bool:
    far = date.max
    return a.start_date <= (b.end_date or far) and b.start_date <= (a.end_date or far)


def counted_twice(today: date, counties=None) -> list[Found]:
    """同一人同期被两个县计入: one identity number placed by two counties over overlapping periods. One proposal for
    each county concerned, naming both placements (each county sees the other's only if its scope allows)."""
    rows = db.session.scalars(possible_duplicates()).all()
    by_person = defaultdict(list)
    for placement in rows:
        by_person[placement.id_fingerprint].append(placement)
    found = {}
    for fingerprint, placements in by_person.items():
        for i, a in enumerate(placements):
            for b in placements[i + 1 :]:
                if a.origin_county_id == b.origin_county_id or not _overlap(a, b):
                    continue
                for own, other in ((a, b), (b, a)):
                    if counties is not None and own.origin_county_id not in counties:
                        continue
                    key = f"person:{fingerprint[:24]}:{own.origin_county_id}:{other.origin_county_id}"
                    item = found.setdefault(key, Found(
                        key=key, unit_id=own.origin_county_id,
                        title=f"{own.person_name}（劳务协作）同一时期被 {own.origin_county.name} 和 "
                              f"{other.origin_county.name} 两个县计入",
                    ))  # fmt: skip
                    for p in (own, other):
                        if ["placements", p.id] not in item.records:
                            item.records.append(["placements", p.id])
    return list(found.values())


def purchases_without_evidence(today: date, counties=None) -> list[Found]:
    """消费帮扶无佐证: purchases dated ``FINDINGS_EVIDENCE_DAYS`` (30) days ago or more with no file attached (the
    evidence module's counts); one proposal per county and year, naming the purchases."""
    days = int(current_app.config.get("FINDINGS_EVIDENCE_DAYS", 30))
    cutoff = today - timedelta(days=days)
    rows = db.session.execute(
        sa.select(Purchase.id, Purchase.seller_county_id, Purchase.purchased_on, Purchase.amount_fen)
        .where(Purchase.purchased_on <= cutoff, _among(Purchase.seller_county_id, counties))
        .order_by(Purchase.purchased_on, Purchase.id)
    ).all()
    files = {}
    for start in range(0, len(rows), 5000):
        files.update(evidence.counts("purchases", [r.id for r in rows[start : start + 5000]]))
    groups = defaultdict(list)
    for row in rows:
        if not files.get(row.id):
            groups[(row.seller_county_id, row.purchased_on.year)].append(row)
    names = dict(db.session.execute(sa.select(Unit.id, Unit.name).where(Unit.id.in_({c for c, _ in groups}))).all())
    found = []
    for (county_id, year), group in sorted(groups.items()):
        total = sum(r.amount_fen for r in group)
        title = (f"{names[county_id]}{year}年有 {len(group)} 笔消费帮扶（{wan(total)} 万元）登记已超过 {days} 天，"
                 "仍没有发票、合同等佐证材料")  # fmt: skip
        found.append(Found(key=f"county:{county_id}:{year}", unit_id=county_id, amount_fen=total, title=title,
                           records=[["purchases", r.id] for r in group[:MAX_RECORDS]]))  # fmt: skip
    return found


def assets_without_caretaker(today: date, counties=None) -> list[Found]:
    """资产管护未落实: assets not 已处置 whose 管护 is not in place; one proposal per county naming the assets.

    What can really happen (``assets.models``/``services``): 管护主体 and 责任人 are NOT NULL and the service refuses
    them blank, but the legacy path (``flask assets from-projects``) writes “（待核实）” where the project does not
    tell, and confirming the draft does not require changing it; so an asset is named when either is blank (a row
    written outside the services: the database has no CHECK for it) or still “（待核实）”. Also when it is still
    待核实 ``FINDINGS_REVIEW_DAYS`` (90) days after it was created, and when it has no 移交 date although a source
    project is at 资产已移交 (the date cleared after the project went over, an asset added to such a project, or a
    legacy draft whose project had no date): not handed over, nobody looks after it."""
    days = int(current_app.config.get("FINDINGS_REVIEW_DAYS", 90))
    reviewed_before = datetime.combine(today - timedelta(days=days), time.min, tzinfo=UTC)
    handed_over = sa.select(Project.id).where(Project.status == ProjectStatus.HANDED_OVER)
    groups = defaultdict(list)
    for row in assets.unmanaged(counties, reviewed_before=reviewed_before, handed_over_projects=handed_over):
        groups[row.county_id].append(row)
    names = dict(db.session.execute(sa.select(Unit.id, Unit.name).where(Unit.id.in_(set(groups)))).all())
    found = []
    for county_id, group in sorted(groups.items()):
        total = sum(r.value for r in group)
        reasons = [f"{label} {n} 项" for label, n in (
            ("管护主体或责任人未明确", sum(r.no_caretaker for r in group)),
            (f"补录后超过 {days} 天仍待核实", sum(r.review_stale for r in group)),
            ("所属项目已“资产已移交”但未填写移交日期", sum(r.not_handed_over for r in group)),
        ) if n]  # fmt: skip
        title = (f"{names[county_id]}有 {len(group)} 项项目资产（原值 {wan(total)} 万元）管护未落实："
                 + "，".join(reasons))  # fmt: skip
        found.append(Found(key=f"county:{county_id}", unit_id=county_id, amount_fen=total, title=title,
                           records=[["assets", r.id] for r in group[:MAX_RECORDS]]))  # fmt: skip
    return found


#: rule -> (its check, what it is called)
RULES = {
    "funds_idle": (funds_idle, "资金到位未拨付"),
    "projects_late": (projects_late, "项目超期未完工"),
    "counted_twice": (counted_twice, "劳务人员重复计入"),
    "purchase_no_evidence": (purchases_without_evidence, "消费帮扶无佐证"),
    "assets_without_caretaker": (assets_without_caretaker, "资产管护未落实"),
}
