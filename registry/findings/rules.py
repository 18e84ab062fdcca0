"""The checks: each names, in one set-based query, the records that look like a problem, grouped so that a county
sees one item per rule and period with its records listed (never one item per record).

A rule stages rows into ``staging.FOUND`` (``stage(staging, today, counties)``: ``INSERT … SELECT``, no loop over
records in Python) and titles its groups (``titles(groups, today)``: one query for the names it needs).
``counties`` (ids) limits it to an office's own counties, None checks everything (the periodic run). Each stays
silent on records in order; tests build a case for each. The groups:

- 资金到位未拨付 (``funds_idle``): one per project; its records are the arrivals older than the cutoff (the
  project itself aside), its amount the project's idle money.
- 项目超期未完工 (``projects_late``): one per project.
- 劳务人员重复计入 (``counted_twice``): one per county, other county and month the people were first found: the
  county's placements of the people the other county also counts in the same period (the other's aside).
- 消费帮扶无佐证 (``purchase_no_evidence``): one per county and year.
- 资产管护未落实 (``assets_without_caretaker``): one per county (the assets stream's ``queries.unmanaged``).

``find(rule, today, counties)`` runs one rule alone and returns its groups with their records (tests, shell).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from registry.assets import queries as assets
from registry.counties.models import Unit
from registry.evidence.models import Attachment
from registry.findings.models import Proposal, ProposalRecord, ProposalState
from registry.findings.staging import FOUND, Staging, text_of
from registry.kernel.extensions import db
from registry.kernel.money import wan
from registry.placements.models import Placement
from registry.problems.models import Category
from registry.projects.models import FundStage, FundTransaction, Project, ProjectStatus
from registry.purchases.models import Purchase


@dataclass
class Group:
    """One group as found: its records counted (``count``: those not aside; ``people``: distinct subjects)."""

    rule: str
    key: str
    unit_id: int
    count: int
    people: int
    amount_fen: int


@dataclass
class Found:
    key: str
    unit_id: int
    title: str
    records: list = field(default_factory=list)
    amount_fen: int = 0
    count: int = 0


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
    return sa.true() if counties is None else column.in_(list(counties))


def _unit_names(ids) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Unit.id, Unit.name).where(Unit.id.in_(ids))).all())


def _staged_ids(rule: str, record_type: str):
    """SELECT of the ids of one table staged by ``rule`` (for a title's names: one query, however many groups)."""
    return sa.select(FOUND.c.record_id).where(FOUND.c.rule == rule, FOUND.c.record_type == record_type)


class Rule:
    name = ""
    label = ""
    category = Category.OTHER
    #: Keys staged without their month: each record takes the month of the proposal that already names it, or
    #: this run's month (``date_groups``).
    dated = False

    def stage(self, staging: Staging, today: date, counties) -> None:
        raise NotImplementedError

    def titles(self, groups: list[Group], today: date) -> dict[str, str]:
        raise NotImplementedError

    def _literal(self):
        return sa.literal(self.name, sa.String(40))


class FundsIdle(Rule):
    """资金到位超过 N 个月未拨付: money that arrived at least N months ago (FINDINGS_IDLE_MONTHS) is more than
    everything disbursed since, on a project not terminated. One group per project, naming its old arrivals."""

    name, label, category = "funds_idle", "资金到位未拨付", Category.FUNDS

    def _cutoff(self, today):
        months = int(current_app.config.get("FINDINGS_IDLE_MONTHS", 6))
        return months, months_before(today, months)

    def stage(self, staging, today, counties):
        _months, cutoff = self._cutoff(today)
        old = sa.and_(FundTransaction.stage == FundStage.ARRIVED, FundTransaction.occurred_on <= cutoff)
        old_arrived = sa.func.coalesce(sa.func.sum(sa.case((old, FundTransaction.amount_fen), else_=0)), 0)
        disbursed = sa.func.coalesce(sa.func.sum(sa.case(
            (FundTransaction.stage == FundStage.DISBURSED, FundTransaction.amount_fen), else_=0)), 0)  # fmt: skip
        idle = (
            sa.select(Project.id.label("project_id"), Project.county_id, (old_arrived - disbursed).label("idle"))
            .join(FundTransaction, FundTransaction.project_id == Project.id)
            .where(Project.status != ProjectStatus.TERMINATED, _among(Project.county_id, counties))
            .group_by(Project.id, Project.county_id)
            .having(old_arrived > disbursed)
        ).subquery()
        key = sa.literal("project:", sa.String) + text_of(idle.c.project_id)
        staging.add(sa.select(self._literal(), key, idle.c.county_id, sa.literal("projects"), idle.c.project_id,
                              sa.literal(1), sa.null(), idle.c.idle))  # fmt: skip
        staging.add(
            sa.select(self._literal(), key, idle.c.county_id, sa.literal("fund_transactions"), FundTransaction.id)
            .join(FundTransaction, FundTransaction.project_id == idle.c.project_id)
            .where(FundTransaction.stage == FundStage.ARRIVED, FundTransaction.occurred_on <= cutoff)
        )

    def titles(self, groups, today):
        months, cutoff = self._cutoff(today)
        projects = {pid: (code, name) for pid, code, name in db.session.execute(
            sa.select(Project.id, Project.code, Project.name).where(Project.id.in_(_staged_ids(self.name, "projects")))
        )}  # fmt: skip
        out = {}
        for g in groups:
            code, name = projects.get(int(g.key.split(":")[1]), ("", ""))
            out[g.key] = (f"项目 {code} {name}：{cutoff} 前到位的资金中有 {wan(g.amount_fen)} 万元超过 {months} 个月"
                          f"未拨付（{g.count} 笔到位）")  # fmt: skip
        return out


#: Statuses of a project still to be finished.
UNFINISHED = (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.SUSPENDED)


class ProjectsLate(Rule):
    """项目超过计划完工日期未完工: a project approved, under way or suspended after its planned finish."""

    name, label, category = "projects_late", "项目超期未完工", Category.PROJECT

    def stage(self, staging, today, counties):
        key = sa.literal("project:", sa.String) + text_of(Project.id)
        staging.add(sa.select(self._literal(), key, Project.county_id, sa.literal("projects"), Project.id).where(
            Project.status.in_(UNFINISHED), Project.planned_finish.is_not(None), Project.planned_finish < today,
            _among(Project.county_id, counties),
        ))  # fmt: skip

    def titles(self, groups, today):
        rows = db.session.execute(
            sa.select(Project.id, Project.code, Project.name, Project.planned_finish, Project.status)
            .where(Project.id.in_(_staged_ids(self.name, "projects")))
        )  # fmt: skip
        return {f"project:{pid}": f"项目 {code} {name}：计划 {finish} 完工，现仍为“{status.label}”"
                for pid, code, name, finish, status in rows}  # fmt: skip


class CountedTwice(Rule):
    """同一人同期被两个县计入: one person (``person_id``, the identity fingerprint's integer) placed by two counties
    over overlapping periods. One group for each county concerned, other county and month the people were found
    (``pair:<county>:<other>:<YYYY-MM>``), naming the county's placements of those people and, aside, the other
    county's (each county sees the other's only if its scope allows).

    The month is when a run first found the person, not a date of the records: a placement already named by a
    proposal of the pair keeps that proposal's month (``dated``: the runner completes the key), so the first run
    gives one group per county pair listing everyone, and later months add one only for people newly found."""

    name, label, category = "counted_twice", "劳务人员重复计入", Category.LABOUR
    dated = True

    def stage(self, staging, today, counties):
        own, other = aliased(Placement), aliased(Placement)
        far = date(9999, 12, 31)
        key = (sa.literal("pair:", sa.String) + text_of(own.origin_county_id) + sa.literal(":")
               + text_of(other.origin_county_id))  # fmt: skip
        staging.add(
            sa.select(self._literal(), key, own.origin_county_id, sa.literal("placements"), own.id, sa.literal(0),
                      own.person_id, sa.literal(0), other.id)
            .join(other, sa.and_(other.person_id == own.person_id, other.origin_county_id != own.origin_county_id))
            .where(own.start_date <= sa.func.coalesce(other.end_date, far),
                   other.start_date <= sa.func.coalesce(own.end_date, far),
                   _among(own.origin_county_id, counties))
        )  # fmt: skip

    def titles(self, groups, today):
        names = _unit_names(int(i) for g in groups for i in g.key.split(":")[1:3])
        out = {}
        for g in groups:
            _, own, other, month = g.key.split(":")
            year, mon = month.split("-")
            out[g.key] = (f"{names.get(int(own), '')}有 {g.people} 人同一时期也被{names.get(int(other), '')}计入劳务"
                          f"协作就业（{year}年{int(mon)}月核查发现）")  # fmt: skip
        return out


class PurchasesWithoutEvidence(Rule):
    """消费帮扶无佐证: purchases dated ``FINDINGS_EVIDENCE_DAYS`` (30) days ago or more with no file attached; one
    group per county and year, naming the purchases."""

    name, label, category = "purchase_no_evidence", "消费帮扶无佐证", Category.CONSUMPTION

    def _days(self):
        return int(current_app.config.get("FINDINGS_EVIDENCE_DAYS", 30))

    def stage(self, staging, today, counties):
        cutoff = today - timedelta(days=self._days())
        filed = sa.exists().where(Attachment.record_type == "purchases", Attachment.record_id == Purchase.id)
        year = text_of(sa.cast(sa.extract("year", Purchase.purchased_on), sa.Integer))
        key = sa.literal("county:", sa.String) + text_of(Purchase.seller_county_id) + sa.literal(":") + year
        staging.add(
            sa.select(self._literal(), key, Purchase.seller_county_id, sa.literal("purchases"), Purchase.id,
                      sa.literal(0), sa.null(), Purchase.amount_fen)
            .where(Purchase.purchased_on <= cutoff, _among(Purchase.seller_county_id, counties), ~filed)
        )  # fmt: skip

    def titles(self, groups, today):
        names = _unit_names(g.unit_id for g in groups)
        return {g.key: (f"{names.get(g.unit_id, '')}{g.key.split(':')[2]}年有 {g.count} 笔消费帮扶"
                        f"（{wan(g.amount_fen)} 万元）登记已超过 {self._days()} 天，仍没有发票、合同等佐证材料")
                for g in groups}  # fmt: skip


class AssetsWithoutCaretaker(Rule):
    """资产管护未落实: assets not 已处置 whose 管护 is not in place; one group per county naming the assets.

    What can really happen (``assets.models``/``services``): 管护主体 and 责任人 are NOT NULL and the service refuses
    them blank, but the legacy path (``flask assets from-projects``) writes “（待核实）” where the project does not
    tell, and confirming the draft does not require changing it; so an asset is named when either is blank (a row
    written outside the services: the database has no CHECK for it) or still “（待核实）”. Also when it is still
    待核实 ``FINDINGS_REVIEW_DAYS`` (90) days after it was created, and when it has no 移交 date although a source
    project is at 资产已移交 (the date cleared after the project went over, an asset added to such a project, or a
    legacy draft whose project had no date): not handed over, nobody looks after it.

    The assets stream answers through ``assets.queries.unmanaged`` (one query; its rows carry the reasons the
    title counts); a county's assets number in the hundreds, not the hundreds of thousands."""

    name, label, category = "assets_without_caretaker", "资产管护未落实", Category.ASSET

    def _days(self):
        return int(current_app.config.get("FINDINGS_REVIEW_DAYS", 90))

    def stage(self, staging, today, counties):
        reviewed_before = datetime.combine(today - timedelta(days=self._days()), time.min, tzinfo=UTC)
        handed_over = sa.select(Project.id).where(Project.status == ProjectStatus.HANDED_OVER)
        rows = assets.unmanaged(counties, reviewed_before=reviewed_before, handed_over_projects=handed_over)
        self._reasons = defaultdict(lambda: [0, 0, 0])
        for row in rows:
            reasons = self._reasons[f"county:{row.county_id}"]
            reasons[0] += row.no_caretaker
            reasons[1] += row.review_stale
            reasons[2] += row.not_handed_over
        staging.add_rows([{"rule": self.name, "key": f"county:{r.county_id}", "unit_id": r.county_id,
                           "record_type": "assets", "record_id": r.id, "aside": 0, "amount_fen": r.value}
                          for r in rows])  # fmt: skip

    def titles(self, groups, today):
        names = _unit_names(g.unit_id for g in groups)
        days = self._days()
        out = {}
        for g in groups:
            counts = getattr(self, "_reasons", {}).get(g.key, (0, 0, 0))
            reasons = [f"{label} {n} 项" for label, n in zip(
                ("管护主体或责任人未明确", f"补录后超过 {days} 天仍待核实", "所属项目已“资产已移交”但未填写移交日期"),
                counts, strict=True) if n]  # fmt: skip
            out[g.key] = (f"{names.get(g.unit_id, '')}有 {g.count} 项项目资产（原值 {wan(g.amount_fen)} 万元）"
                          "管护未落实：" + "，".join(reasons))  # fmt: skip
        return out


_ALL = (FundsIdle(), ProjectsLate(), CountedTwice(), PurchasesWithoutEvidence(), AssetsWithoutCaretaker())
#: rule name -> the rule (``label``: what it is called; ``category``: the ledger's category of its problems)
RULES = {rule.name: rule for rule in _ALL}


def date_groups(staging: Staging, rules, today: date) -> None:
    """Complete the keys of the ``dated`` rules' rows: the key of the proposal of the same group that already
    names the record (an open one first, else the newest decided), or the group with this month."""
    names = [rule.name for rule in rules if rule.dated]
    if not names:
        return
    f, p, r = FOUND.c, Proposal.__table__.c, ProposalRecord.__table__.c
    named = (
        sa.select(p.key)
        .join(ProposalRecord.__table__, r.proposal_id == p.id)
        .where(r.record_type == f.record_type, r.record_id == f.record_id, p.rule == f.rule,
               p.key.like(f.key + sa.literal(":%")))
        .order_by(sa.case((p.state == ProposalState.PROPOSED.value, 0), else_=1), p.id.desc())
        .limit(1)
        .scalar_subquery()
    )  # fmt: skip
    month = sa.literal(f":{today:%Y-%m}", sa.String)
    staging.execute(sa.update(FOUND).where(f.rule.in_(names), f.aside == 0)
                    .values(key=sa.func.coalesce(named, f.key + month)))  # fmt: skip


def stage(staging: Staging, rules, today: date, counties) -> None:
    """Every rule's rows (their keys completed), then the partners' rows aside (the other county's placement of
    a person, in the group of the county's own)."""
    rules = list(rules)
    for rule in rules:
        rule.stage(staging, today, counties)
    date_groups(staging, rules, today)
    f = FOUND.c
    staging.add(
        sa.select(f.rule, f.key, f.unit_id, f.record_type, f.partner_id, sa.literal(1), f.subject, sa.literal(0))
        .where(f.partner_id.is_not(None))
        .distinct()
    )
    staging.index()


def groups(staging: Staging) -> list[Group]:
    f = FOUND.c
    stmt = (
        sa.select(f.rule, f.key, f.unit_id, sa.func.count(sa.distinct(sa.case((f.aside == 0, f.record_id)))),
                  sa.func.count(sa.distinct(f.subject)), sa.func.coalesce(sa.func.sum(f.amount_fen), 0))
        .group_by(f.rule, f.key, f.unit_id)
        .order_by(f.rule, f.unit_id, f.key)
    )  # fmt: skip
    return [Group(r, k, u, int(n), int(p), int(a)) for r, k, u, n, p, a in staging.execute(stmt)]


def titles(found: list[Group], today: date) -> dict[tuple[str, str], str]:
    by_rule = defaultdict(list)
    for g in found:
        by_rule[g.rule].append(g)
    out = {}
    for name, rule_groups in by_rule.items():
        for key, title in RULES[name].titles(rule_groups, today).items():
            out[(name, key)] = title[:500]
    return out


def find(name: str, today: date, counties=None) -> list[Found]:
    """One rule's groups as they stand (no proposal read or written), with every record, in key order."""
    with Staging(db.session) as staging:
        stage(staging, [RULES[name]], today, counties)
        found = groups(staging)
        named = titles(found, today)
        records = defaultdict(list)
        f = FOUND.c
        for key, record_type, record_id in staging.execute(
            sa.select(f.key, f.record_type, f.record_id).distinct().order_by(f.key, f.record_type, f.record_id)
        ):
            records[key].append([record_type, record_id])
        return [Found(key=g.key, unit_id=g.unit_id, title=named[(name, g.key)], records=records[g.key],
                      amount_fen=g.amount_fen, count=g.count) for g in found]  # fmt: skip


def funds_idle(today: date, counties=None) -> list[Found]:
    return find("funds_idle", today, counties)


def projects_late(today: date, counties=None) -> list[Found]:
    return find("projects_late", today, counties)


def counted_twice(today: date, counties=None) -> list[Found]:
    return find("counted_twice", today, counties)


def purchases_without_evidence(today: date, counties=None) -> list[Found]:
    return find("purchase_no_evidence", today, counties)


def assets_without_caretaker(today: date, counties=None) -> list[Found]:
    return find("assets_without_caretaker", today, counties)
