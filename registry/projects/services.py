"""Project writes (create, edit, status steps) and the money rules of fund transactions. Callers commit.

Every write to a project's ledger (a transaction added, changed or deleted, a status step) first locks the
project (``lock_ledger``) and re-reads the ledger, so two requests cannot each check 拨付 ≤ 到位 against a ledger
the other is changing. The database holds the same rule (a trigger, see the migration c6c6a2cc88a6); should it
ever refuse a write, the refusal is the same Chinese message the check gives.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.util import identity_key

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.money import rate, wan
from registry.kernel.periods import Period
from registry.kernel.services import ServiceError, check_status_guards, check_version, provide_facts
from registry.kernel.transfer import written
from registry.pairings.models import Pairing
from registry.pairings.services import partners_during
from registry.permissions import authorize_write, check_locked_date
from registry.projects.models import (
    FundSource,
    FundStage,
    FundTransaction,
    Project,
    ProjectFunds,
    ProjectStatus,
    StatusChange,
)

PROJECT_FIELDS = (
    "code", "name", "county_id", "township_id", "village_id", "pairing_id", "programme_id", "year", "category",
    "delivery_mode", "funding_level", "implementing_unit", "responsible_person", "planned_start", "planned_finish",
    "actual_start", "actual_finish", "beneficiaries", "beneficiaries_lifted", "farmer_benefit", "performance_targets",
)  # fmt: skip
TRANSACTION_FIELDS = ("source", "stage", "amount_fen", "occurred_on", "document_no", "note")

S = ProjectStatus
#: Legal lifecycle steps. A suspended project resumes to the status it was suspended from.
TRANSITIONS = {
    S.RESERVE: {S.APPROVED, S.TERMINATED},
    S.APPROVED: {S.IN_PROGRESS, S.SUSPENDED, S.TERMINATED},
    S.IN_PROGRESS: {S.COMPLETED, S.SUSPENDED, S.TERMINATED},
    S.COMPLETED: {S.ACCEPTED},
    S.ACCEPTED: {S.HANDED_OVER},
    S.HANDED_OVER: set(),
    S.SUSPENDED: {S.TERMINATED},  # plus the resumption, see allowed_transitions
    S.TERMINATED: set(),
}


def pairing_choices(county_id: int, on: date, where=None) -> list[Pairing]:
    """Pairings a project in this county may belong to: the county's (or its prefecture's) valid on ``on``."""
    return partners_during(county_id, Period(on, on), include_parents=True, where=where)


def _normalise(data: dict) -> dict:
    """Blank optional numbers are 0 and blank texts are empty strings (the columns are NOT NULL)."""
    for key in ("beneficiaries", "beneficiaries_lifted"):
        data[key] = data.get(key) or 0
    for key in ("implementing_unit", "responsible_person", "farmer_benefit", "performance_targets"):
        data[key] = data.get(key) or ""
    for key in ("township_id", "village_id"):
        data[key] = data.get(key) or None
    return data


def _check(data: dict, project: Project | None = None) -> None:
    """Cross-field and database rules of a project; raise ServiceError naming the field."""
    county = db.session.get(Unit, data["county_id"]) if data.get("county_id") else None
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择项目所在的四川县(市、区)。", "county_id")
    for key, kind in (("township_id", UnitKind.TOWNSHIP), ("village_id", UnitKind.VILLAGE)):
        if data.get(key):
            unit = db.session.get(Unit, data[key])
            if unit is None or unit.kind is not kind or unit.county_id != county.id:
                raise ServiceError(f"所选{kind.label}不在{county.name}。", key)
    if data.get("village_id") and data.get("township_id"):
        village = db.session.get(Unit, data["village_id"])
        if village.parent_id != data["township_id"]:
            raise ServiceError("所选村不在所选乡镇。", "village_id")
    start = data["planned_start"]
    if start is None:
        raise ServiceError("请填写计划开工日期。", "planned_start")
    pairing = db.session.get(Pairing, data["pairing_id"]) if data.get("pairing_id") else None
    valid = {p.id for p in pairing_choices(county.id, start)}
    if pairing is None or pairing.id not in valid:
        raise ServiceError(f"所选结对关系在计划开工日 {start.isoformat()} 不是{county.name}的有效结对。", "pairing_id")
    data["programme_id"] = pairing.programme_id
    for begin, end, label in (
        ("planned_start", "planned_finish", "计划完工日期早于计划开工日期"),
        ("actual_start", "actual_finish", "实际完工日期早于实际开工日期"),
    ):
        if data.get(begin) and data.get(end) and data[end] < data[begin]:
            raise ServiceError(f"{label}。", end)
    if data.get("actual_finish") and not data.get("actual_start"):
        raise ServiceError("填写实际完工日期前，请先填写实际开工日期。", "actual_start")
    if (data.get("beneficiaries_lifted") or 0) > (data.get("beneficiaries") or 0):
        raise ServiceError(
            f"其中脱贫人口（{data['beneficiaries_lifted']}）不能大于带动人数（{data['beneficiaries']}）。",
            "beneficiaries_lifted",
        )
    if not 2000 <= data["year"] <= 2100:
        raise ServiceError("年度应在 2000–2100 之间。", "year")
    clash = db.session.scalar(sa.select(Project.id).where(Project.code == data["code"]))
    if clash is not None and (project is None or clash != project.id):
        raise ServiceError(f"项目编号 {data['code']} 已被使用。", "code")


def next_code(programme_prefix: str, county: Unit, year: int) -> str:
    """Suggest the next free code, e.g. ZC-513431-2024-007."""
    stem = f"{programme_prefix}-{county.code}-{year}-"
    used = db.session.scalars(sa.select(Project.code).where(Project.code.like(stem + "%"))).all()
    numbers = [int(c[len(stem) :]) for c in used if c[len(stem) :].isdigit()]
    return f"{stem}{max(numbers, default=0) + 1:03d}"


def create_project(data: dict, *, actor, batch=None) -> Project:
    """Create a project in 储备 (or the given status on import); record its first status step."""
    data = _normalise({k: data.get(k) for k in PROJECT_FIELDS})
    if not data.get("code"):
        raise ServiceError("请填写项目编号。", "code")
    _check(data)
    authorize_write(actor, Project, data)
    project = Project(**data, status=ProjectStatus.RESERVE)
    db.session.add(project)
    db.session.flush()
    db.session.add(
        # The day a project entered the library is rarely known for older projects: the start of its year
        # (or today, for next year's) stands in, and later steps are only ordered against each other.
        StatusChange(project=project, from_status=None, to_status=ProjectStatus.RESERVE,
                     changed_on=min(date.today(), date(project.year, 1, 1), project.planned_start),
                     note="录入项目", actor_id=getattr(actor, "id", None))
    )  # fmt: skip
    written("create", project, actor=actor, summary=f"新建项目 {project}", changes=snapshot(project, PROJECT_FIELDS),
            batch=batch)  # fmt: skip
    return project


def update_project(project: Project, data: dict, *, actor, version=None, batch=None) -> dict:
    check_version(project, version)
    merged = _normalise({k: data.get(k, getattr(project, k)) for k in PROJECT_FIELDS})
    if not merged.get("code"):
        merged["code"] = project.code
    _check(merged, project)
    authorize_write(actor, Project, merged, before=project)
    if any(merged[k] != getattr(project, k) for k in REPORTED_FIELDS):
        _check_project_unlocked(project, {project.county_id, merged["county_id"]})
    changes = apply_changes(project, merged, PROJECT_FIELDS)
    if changes:
        written("update", project, actor=actor, summary=f"修改项目 {project}", changes=changes, batch=batch)
    return changes


#: Fields a quarterly report shows or counts a project by: changing one changes the figures of every quarter the
#: project has a fund transaction or a status step in.
REPORTED_FIELDS = (
    "code", "name", "county_id", "pairing_id", "programme_id", "year", "category", "beneficiaries",
    "beneficiaries_lifted",
)  # fmt: skip


def _check_project_unlocked(project: Project, county_ids) -> None:
    """Refuse a change to what the reports show of ``project`` when one of its fund transactions or status steps
    lies in a quarter locked for its county (before or after the change): a project has no date of its own, its
    figures are dated by these."""
    days = {t.occurred_on for t in project.transactions} | {c.changed_on for c in project.status_changes}
    for county_id in county_ids:
        for day in sorted(days):
            check_locked_date(county_id, day)


def resume_status(project: Project) -> ProjectStatus | None:
    """The status a suspended project returns to: the one it was suspended from."""
    for change in reversed(project.status_changes):
        if change.to_status is ProjectStatus.SUSPENDED:
            return change.from_status
    return None


def allowed_transitions(project: Project) -> list[ProjectStatus]:
    """The statuses this project may move to now, in lifecycle order."""
    allowed = set(TRANSITIONS[project.status])
    if project.status is ProjectStatus.SUSPENDED and (back := resume_status(project)):
        allowed.add(back)
    return [s for s in ProjectStatus if s in allowed]


def change_status(project: Project, to: ProjectStatus, on: date, note: str = "", *, actor, version=None):
    """Move a project one legal step, dated ``on``; fills actual start and finish dates when they are empty."""
    # The status decides which fund stages may be entered: a step and a transaction must not cross.
    lock_ledger(project)
    check_version(project, version)
    authorize_write(actor, Project, project, before=project)
    if to not in allowed_transitions(project):
        allowed = "、".join(s.label for s in allowed_transitions(project)) or "无（已是最终状态）"
        raise ServiceError(
            f"项目当前为“{project.status.label}”，不能变更为“{to.label}”。可选：{allowed}。", "to_status"
        )
    steps = [c.changed_on for c in project.status_changes if c.from_status is not None]
    last = steps[-1] if steps else None
    if on > date.today():
        raise ServiceError("变更日期不能晚于今天。", "changed_on")
    if last and on < last:
        raise ServiceError(f"变更日期不能早于上一次状态变更日期 {last.isoformat()}。", "changed_on")
    check_locked_date(project.county_id, on, field="changed_on")
    # Rules other streams hold over a step (资产已移交 needs the project's assets registered and handed over).
    check_status_guards("project", project, to.value, "to_status")
    old = project.status
    changes = {"status": [old.value, to.value]}
    if to is ProjectStatus.IN_PROGRESS and project.actual_start is None:
        project.actual_start = on
        changes["actual_start"] = [None, on.isoformat()]
    if to is ProjectStatus.COMPLETED and project.actual_finish is None:
        project.actual_finish = on
        changes["actual_finish"] = [None, on.isoformat()]
    project.status = to
    db.session.add(StatusChange(project=project, from_status=old, to_status=to, changed_on=on, note=note or "",
                                actor_id=getattr(actor, "id", None)))  # fmt: skip
    record("status", project, actor=actor, summary=f"{project.code}：{old.label} → {to.label}（{on.isoformat()}）",
           changes=changes)  # fmt: skip


@provide_facts("project")
def project_facts(ids=None, statuses=None, codes=None) -> list[dict]:
    """Plain facts of projects for other streams (an asset's prefill, the legacy asset path): no ORM objects."""
    stmt = sa.select(Project).order_by(Project.id)
    if codes is not None:
        stmt = stmt.where(Project.code.in_(list(codes)))
    if ids is not None:
        stmt = stmt.where(Project.id.in_(list(ids)))
    if statuses is not None:
        stmt = stmt.where(Project.status.in_(list(statuses)))
    projects = db.session.scalars(stmt).all()
    arrived = defaultdict(dict)
    if projects:
        rows = db.session.execute(
            sa.select(ProjectFunds.project_id, ProjectFunds.source, ProjectFunds.disbursed_fen,
                      ProjectFunds.arrived_fen, ProjectFunds.planned_fen)
            .where(ProjectFunds.project_id.in_([p.id for p in projects]))
        )  # fmt: skip
        # What the asset was formed from: the money paid out (拨付), else arrived, else planned.
        for project_id, source, disbursed, amount, planned in rows:
            arrived[project_id][FundSource(source).value] = int(disbursed or amount or planned or 0)
    steps = defaultdict(dict)
    if projects:
        for project_id, to, day in db.session.execute(
            sa.select(StatusChange.project_id, StatusChange.to_status, StatusChange.changed_on)
            .where(StatusChange.project_id.in_([p.id for p in projects]))
            .order_by(StatusChange.id)
        ):
            steps[project_id][ProjectStatus(to).value] = day
    return [
        {
            "id": p.id,
            "code": p.code,
            "name": p.name,
            "county_id": p.county_id,
            "township_id": p.township_id,
            "village_id": p.village_id,
            "pairing_id": p.pairing_id,
            "programme_id": p.programme_id,
            "year": p.year,
            "category": p.category.value,
            "category_label": p.category.label,
            "status": p.status.value,
            "status_label": p.status.label,
            "actual_finish": p.actual_finish,
            "accepted_on": steps[p.id].get("accepted"),
            "handed_over_on": steps[p.id].get("handed_over"),
            "funds": dict(arrived[p.id]),
            "implementing_unit": p.implementing_unit,
            "responsible_person": p.responsible_person,
        }  # fmt: skip
        for p in projects
    ]


# ---- funds ----------------------------------------------------------------------------------------------------


@dataclass
class FundTotals:
    """Totals of one project (or of many), by source and stage, with the derived figures."""

    by_source: dict = field(default_factory=lambda: defaultdict(lambda: dict.fromkeys(FundStage, 0)))

    def add(self, source: FundSource, stage: FundStage, amount: int):
        self.by_source[source][stage] += amount

    def stage_total(self, stage: FundStage) -> int:
        return sum(row[stage] for row in self.by_source.values())

    @property
    def planned(self) -> int:
        return self.stage_total(FundStage.PLANNED)

    @property
    def arrived(self) -> int:
        return self.stage_total(FundStage.ARRIVED)

    @property
    def disbursed(self) -> int:
        return self.stage_total(FundStage.DISBURSED)

    @property
    def undisbursed(self) -> int:
        """到位未拨付: money arrived but not yet paid out."""
        return self.arrived - self.disbursed

    def rows(self):
        """(source, planned, arrived, disbursed, undisbursed, 资金使用率) per source present, in a fixed order."""
        order = list(FundSource)
        rows = []
        for source, row in sorted(self.by_source.items(), key=lambda item: order.index(item[0])):
            planned, arrived, disbursed = row[FundStage.PLANNED], row[FundStage.ARRIVED], row[FundStage.DISBURSED]
            rows.append((source, planned, arrived, disbursed, arrived - disbursed, rate(disbursed, arrived)))
        return rows


def totals_for(project_ids=None, where=None, since: date | None = None, until: date | None = None) -> FundTotals:
    """Sum transactions by source and stage in one query; ``where`` filters on Project, since/until on the date."""
    stmt = sa.select(FundTransaction.source, FundTransaction.stage, sa.func.sum(FundTransaction.amount_fen))
    stmt = stmt.join(Project, Project.id == FundTransaction.project_id)
    if project_ids is not None:
        stmt = stmt.where(FundTransaction.project_id.in_(project_ids))
    if where is not None:
        stmt = stmt.where(where)
    if since is not None:
        stmt = stmt.where(FundTransaction.occurred_on >= since)
    if until is not None:
        stmt = stmt.where(FundTransaction.occurred_on <= until)
    totals = FundTotals()
    for source, stage, amount in db.session.execute(stmt.group_by(FundTransaction.source, FundTransaction.stage)):
        totals.add(FundSource(source), FundStage(stage), int(amount or 0))
    return totals


def refresh_fund_totals(project_ids=None) -> None:
    """Rebuild ProjectFunds rows from the transactions of these projects (all projects when None).

    An upsert, not a delete and insert: two writers rebuilding the same project's rows (each under its own
    lock on a different project, or a bulk rebuild) never collide on the primary key.
    """
    db.session.flush()
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert

    def stage_sum(stage):
        return sa.func.coalesce(
            sa.func.sum(sa.case((FundTransaction.stage == stage, FundTransaction.amount_fen), else_=0)), 0
        )

    # SQLite needs a WHERE in an INSERT … SELECT … ON CONFLICT (else ON reads as a join's), hence sa.true().
    which = FundTransaction.project_id.in_(project_ids) if project_ids is not None else sa.true()
    select = (
        sa.select(
            FundTransaction.project_id,
            FundTransaction.source,
            stage_sum(FundStage.PLANNED),
            stage_sum(FundStage.ARRIVED),
            stage_sum(FundStage.DISBURSED),
        )
        .where(which)
        .group_by(FundTransaction.project_id, FundTransaction.source)
    )
    columns = ["project_id", "source", "planned_fen", "arrived_fen", "disbursed_fen"]
    upsert = insert(ProjectFunds).from_select(columns, select)
    upsert = upsert.on_conflict_do_update(
        index_elements=["project_id", "source"], set_={c: upsert.excluded[c] for c in columns[2:]}
    )
    db.session.execute(upsert)
    # Sources whose last transaction went: their row goes too.
    gone = sa.delete(ProjectFunds).where(
        ~sa.exists().where(
            FundTransaction.project_id == ProjectFunds.project_id, FundTransaction.source == ProjectFunds.source
        )
    )
    if project_ids is not None:
        gone = gone.where(ProjectFunds.project_id.in_(project_ids))
    db.session.execute(gone.execution_options(synchronize_session=False))

    def total(column):
        return sa.func.coalesce(
            sa.select(sa.func.sum(column)).where(ProjectFunds.project_id == Project.id).scalar_subquery(), 0
        )

    # A Core UPDATE: these derived columns must not bump the project's version (an edit in progress stays valid).
    # Sum of distinct powers of two = their bitwise OR: one bit per source present.
    bits = sa.case(*((ProjectFunds.source == s, s.bit) for s in FundSource), else_=0)
    update = sa.update(Project).values(
        planned_fen=total(ProjectFunds.planned_fen),
        arrived_fen=total(ProjectFunds.arrived_fen),
        disbursed_fen=total(ProjectFunds.disbursed_fen),
        fund_sources=total(bits),
    )
    if project_ids is not None:
        update = update.where(Project.id.in_(project_ids))
    db.session.execute(update.execution_options(synchronize_session=False))
    # The loaded projects' totals are stale now. Looked up by key: walking the whole identity map for each project
    # made a 69,000-row fund import quadratic (its map holds every transaction it added).
    if project_ids is None:
        loaded = [obj for obj in list(db.session.identity_map.values()) if isinstance(obj, Project)]
    else:
        keys = (identity_key(Project, project_id) for project_id in project_ids)
        loaded = [obj for key in keys if (obj := db.session.identity_map.get(key)) is not None]
    for obj in loaded:
        db.session.expire(obj, ["planned_fen", "arrived_fen", "disbursed_fen", "fund_sources"])


@dataclass(frozen=True)
class ListSummary:
    """Count and money totals of a filtered project list (all sources)."""

    count: int
    planned: int
    arrived: int
    disbursed: int

    @property
    def usage(self):
        return rate(self.disbursed, self.arrived)


def list_summary(stmt: sa.Select) -> ListSummary:
    """Count and totals of every project ``stmt`` selects, in one pass over the projects table."""
    row = db.session.execute(
        stmt.with_only_columns(
            sa.func.count(Project.id),
            sa.func.coalesce(sa.func.sum(Project.planned_fen), 0),
            sa.func.coalesce(sa.func.sum(Project.arrived_fen), 0),
            sa.func.coalesce(sa.func.sum(Project.disbursed_fen), 0),
        ).order_by(None)
    ).one()
    return ListSummary(*(int(v) for v in row))


def check_money_rules(project: Project, transactions: list[FundTransaction]) -> None:
    """Cumulative 拨付 of a source may never exceed its cumulative 到位, on any day.

    :raise ServiceError: naming the source, the first day it is broken and by how much.
    """
    breach = first_breach(transactions)
    if breach is not None:
        raise ServiceError(breach[1], "amount_fen")


def first_breach(transactions) -> tuple[object, str] | None:
    """The first transaction (in date order) at which cumulative 拨付 of its source exceeds cumulative 到位, and
    the refusal naming the source, the day and by how much; None when the ledger keeps the rule."""
    timeline = sorted(
        (t for t in transactions if t.stage in (FundStage.ARRIVED, FundStage.DISBURSED)),
        # Arrivals of a day count before that day's disbursements.
        key=lambda t: (t.occurred_on, t.stage is FundStage.DISBURSED),
    )
    arrived, disbursed = defaultdict(int), defaultdict(int)
    for t in timeline:
        bucket = arrived if t.stage is FundStage.ARRIVED else disbursed
        bucket[t.source] += t.amount_fen
        if disbursed[t.source] > arrived[t.source]:
            excess = disbursed[t.source] - arrived[t.source]
            return t, (
                f"{t.source.label}：截至 {t.occurred_on.isoformat()} 累计拨付 {wan(disbursed[t.source], 4)} 万元，"
                f"超过累计到位 {wan(arrived[t.source], 4)} 万元，超出 {wan(excess, 4)} 万元（{excess / 100:.2f} 元）。"
            )
    return None


def _validate_transaction(data: dict, project: Project):
    if data.get("amount_fen") is None or data["amount_fen"] <= 0:
        raise ServiceError("金额须大于 0。", "amount_fen")
    if data.get("occurred_on") is None:
        raise ServiceError("请填写日期。", "occurred_on")
    if data["occurred_on"] > date.today():
        raise ServiceError("日期不能晚于今天；计划资金请按下达计划的日期登记。", "occurred_on")
    if project.status in (ProjectStatus.RESERVE,) and data["stage"] is not FundStage.PLANNED:
        raise ServiceError("储备项目只能登记计划资金；立项后才能登记到位和拨付。", "stage")


def lock_ledger(project: Project) -> None:
    """Serialise writes to this project's ledger and re-read it as the last committed writer left it.

    PostgreSQL: the project row is locked (SELECT … FOR NO KEY UPDATE, the lock the database's ledger trigger
    takes too) until the transaction ends; a second writer waits here, then reads the first one's transactions
    (READ COMMITTED: each statement sees what is committed).
    SQLite: a writing request's transaction began IMMEDIATE (registry.kernel.database), so it already holds the only
    write lock and reads after the previous writer's commit; FOR UPDATE is left out there.
    """
    db.session.execute(
        sa.select(Project)
        .where(Project.id == project.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    db.session.execute(
        sa.select(FundTransaction)
        .where(FundTransaction.project_id == project.id)
        .execution_options(populate_existing=True)
    ).all()
    db.session.expire(project, ["transactions", "status_changes"])


def is_ledger_refusal(exc: Exception) -> bool:
    """Whether a database error is the ledger trigger's refusal (拨付 would exceed 到位)."""
    return isinstance(exc, sa.exc.DBAPIError) and "fund_ledger_rule" in str(exc.orig)


def _write_ledger(project: Project, write, would_be) -> None:
    """Run ``write`` (changes to the session) and flush it, with the database's ledger rule checked at once.

    The rule is checked before (``check_money_rules``) under the lock, so the database should never refuse; if
    it does, the write is undone and the refusal becomes the same message, computed on the ledger as the
    database has it (``would_be()`` is the would-be ledger), or a general one.
    """
    savepoint = db.session.begin_nested()
    try:
        write()
        db.session.flush()
        if db.session.get_bind().dialect.name == "postgresql":
            # The trigger is deferred to commit; bring its pending checks forward to here, then defer again.
            db.session.execute(sa.text("SET CONSTRAINTS fund_ledger_rule IMMEDIATE"))
            db.session.execute(sa.text("SET CONSTRAINTS fund_ledger_rule DEFERRED"))
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if not is_ledger_refusal(exc):
            raise
        lock_ledger(project)
        check_money_rules(project, would_be())
        raise ServiceError("累计拨付不能超过累计到位，该资金记录未保存。", "amount_fen") from exc
    savepoint.commit()


def add_transaction(project: Project, data: dict, *, actor) -> FundTransaction:
    data = {k: data.get(k) for k in TRANSACTION_FIELDS}
    # A fund transaction lies where its project lies: writing one is writing the project's ledger.
    authorize_write(actor, Project, project, before=project)
    lock_ledger(project)
    _validate_transaction(data, project)
    check_locked_date(project.county_id, data["occurred_on"], field="occurred_on")
    # Check the would-be ledger before anything touches the session, so a refusal leaves nothing behind.
    check_money_rules(project, [*project.transactions, SimpleNamespace(**data)])
    transaction = FundTransaction(**{k: v for k, v in data.items() if v is not None})
    transaction.document_no = transaction.document_no or ""
    transaction.note = transaction.note or ""
    _write_ledger(
        project,
        lambda: project.transactions.append(transaction),
        lambda: [*project.transactions, SimpleNamespace(**data)],
    )
    refresh_fund_totals([project.id])
    what = f"{transaction.source.label}{transaction.stage.label} {wan(transaction.amount_fen, 4)} 万元"
    record("create", transaction, actor=actor, changes=snapshot(transaction, TRANSACTION_FIELDS),
           summary=f"{project.code} 登记{what}", context=project)  # fmt: skip
    return transaction


def add_transactions(project: Project, rows: list[dict], *, actor, batch=None) -> list[FundTransaction]:
    """Add several transactions to one ledger at once (an import): the money rule is checked once, over the
    ledger with all of them, so their order in the file does not matter; each gets its own audit event."""
    authorize_write(actor, Project, project, before=project)
    lock_ledger(project)
    datas = [{k: data.get(k) for k in TRANSACTION_FIELDS} for data in rows]
    for data in datas:
        _validate_transaction(data, project)
        check_locked_date(project.county_id, data["occurred_on"], field="occurred_on")

    def would_be():
        return [*project.transactions, *(SimpleNamespace(**data) for data in datas)]

    check_money_rules(project, would_be())
    added = []
    # Plans and arrivals first, then 拨付 by date: wherever the database checks the rule row by row, every
    # intermediate ledger keeps it when the final one does.
    for data in sorted(datas, key=lambda d: (d["stage"] is FundStage.DISBURSED, d["occurred_on"])):
        transaction = FundTransaction(**{k: v for k, v in data.items() if v is not None})
        transaction.document_no = transaction.document_no or ""
        transaction.note = transaction.note or ""
        added.append(transaction)
    _write_ledger(project, lambda: project.transactions.extend(added), would_be)
    refresh_fund_totals([project.id])
    for transaction in added:
        what = f"{transaction.source.label}{transaction.stage.label} {wan(transaction.amount_fen, 4)} 万元"
        written("create", transaction, actor=actor, changes=snapshot(transaction, TRANSACTION_FIELDS),
                summary=f"{project.code} 登记{what}", context=project, batch=batch)  # fmt: skip
    return added


def update_transaction(transaction: FundTransaction, data: dict, *, actor, version=None, batch=None) -> dict:
    project = transaction.project
    authorize_write(actor, Project, project, before=project)
    lock_ledger(project)
    check_version(transaction, version)
    merged = {k: data.get(k, getattr(transaction, k)) for k in TRANSACTION_FIELDS}
    _validate_transaction(merged, project)
    for day in (transaction.occurred_on, merged["occurred_on"]):
        check_locked_date(project.county_id, day, field="occurred_on")

    def would_be():
        return [*(t for t in project.transactions if t.id != transaction.id), SimpleNamespace(**merged)]

    check_money_rules(project, would_be())
    changes = {}

    def write():
        changes.update(apply_changes(transaction, merged, TRANSACTION_FIELDS))

    _write_ledger(project, write, would_be)
    refresh_fund_totals([project.id])
    if changes:
        written("update", transaction, actor=actor, changes=changes,
                summary=f"{project.code} 修改资金记录", context=project, batch=batch)  # fmt: skip
    return changes


def delete_transaction(transaction: FundTransaction, *, actor, version=None) -> None:
    project = transaction.project
    authorize_write(actor, Project, project, before=project)
    lock_ledger(project)
    check_version(transaction, version)
    check_locked_date(project.county_id, transaction.occurred_on, field="occurred_on")

    def would_be():
        return [t for t in project.transactions if t.id != transaction.id]

    check_money_rules(project, would_be())
    changes = snapshot(transaction, TRANSACTION_FIELDS)
    summary = (f"{project.code} 删除资金记录 {transaction.source.label}{transaction.stage.label} "
               f"{wan(transaction.amount_fen, 4)} 万元")  # fmt: skip

    def write():
        project.transactions.remove(transaction)
        db.session.delete(transaction)

    _write_ledger(project, write, would_be)
    record("delete", transaction, actor=actor, changes=changes, summary=summary, context=project)
    refresh_fund_totals([project.id])
