"""The projects module's figures: the 财政援助资金 and 项目数 indicators, and the report's funds and projects.

Each function takes a SELECT (or list) of Sichuan county ids, a period and optionally ``pairings``, a SELECT of the
pairing ids whose records count (an East liaison's own; None counts every record), and returns numbers or plain
rows. Agreements and reports compose them; nothing here knows about either.
"""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.kernel.database import among, per_unit
from registry.kernel.extensions import db
from registry.kernel.periods import Period, Quarter
from registry.projects.models import (
    FundSource,
    FundStage,
    FundTransaction,
    Project,
    ProjectFunds,
    ProjectStatus,
    StatusChange,
)

# ---- indicator calculators ---------------------------------------------------------------------------------------


def fiscal_funds(counties, programme_id, period, pairings=None, *, units=None):
    """东部财政援助资金 arrived (到位) in the period, for the programme's projects in the counties.

    With ``units`` ({unit id: its county ids}, every one of them among ``counties``): {unit id: amount}, in one
    query (the ranking's and the home pages' many units)."""
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(FundTransaction.amount_fen), 0))
        .join(Project, Project.id == FundTransaction.project_id)
        .where(
            Project.county_id.in_(counties),
            Project.programme_id == programme_id,
            among(Project.pairing_id, pairings),
            FundTransaction.source == FundSource.EAST_FISCAL,
            FundTransaction.stage == FundStage.ARRIVED,
            FundTransaction.occurred_on.between(period.start, period.end),
        )
    )
    return db.session.scalar(stmt) if units is None else per_unit(db.session, stmt, Project.county_id, units)


def project_count(counties, programme_id, period, pairings=None, *, units=None):
    """Projects of the period's year approved (立项) during the period and not terminated by its end.

    A period from 1 January counts every approval up to its end, including one given the year before (a
    project planned for 2024 may be approved in December 2023); a later period (a quarter) counts the
    approvals within it, so the quarters of a year add up to the year.
    """
    stmt = sa.select(sa.func.count(Project.id)).where(
        Project.county_id.in_(counties),
        Project.programme_id == programme_id,
        among(Project.pairing_id, pairings),
        counted_projects(period),
    )
    return db.session.scalar(stmt) if units is None else per_unit(db.session, stmt, Project.county_id, units)


def counted_projects(period):
    """WHERE on Project: the projects ``project_count`` counts for ``period`` (also used grouped by county)."""

    def stepped(status, since=None):
        when = [StatusChange.changed_on <= period.end]
        if since is not None:
            when.append(StatusChange.changed_on >= since)
        return (
            sa.select(StatusChange.id)
            .where(StatusChange.project_id == Project.id, StatusChange.to_status == status, *when)
            .exists()
        )

    year_start = date(period.start.year, 1, 1)
    since = None if period.start <= year_start else period.start
    return sa.and_(
        Project.year == period.start.year,
        stepped(ProjectStatus.APPROVED, since),
        ~stepped(ProjectStatus.TERMINATED),
    )


# ---- report figures ----------------------------------------------------------------------------------------------


def year_money(counties, pairings, period: Period, *, recent_from: date) -> list[tuple]:
    """The money of the report's funds section: transactions of projects in the counties (of every programme and
    project year) dated within ``period`` (the year to the quarter's end), grouped by programme id, project year,
    source and stage: ``(programme_id, project_year, source, stage, amount, amount dated from recent_from)``."""
    recent = sa.case((FundTransaction.occurred_on >= recent_from, FundTransaction.amount_fen), else_=0)
    stmt = (
        sa.select(
            Project.programme_id,
            Project.year,
            FundTransaction.source,
            FundTransaction.stage,
            sa.func.sum(FundTransaction.amount_fen),
            sa.func.sum(recent),
        )
        .join(Project, Project.id == FundTransaction.project_id)
        .where(
            Project.county_id.in_(counties),
            among(Project.pairing_id, pairings),
            FundTransaction.occurred_on.between(period.start, period.end),
        )
        .group_by(Project.programme_id, Project.year, FundTransaction.source, FundTransaction.stage)
    )
    return [
        (programme_id, year, FundSource(source), FundStage(stage), int(amount or 0), int(recent_amount or 0))
        for programme_id, year, source, stage, amount, recent_amount in db.session.execute(stmt)
    ]


def year_projects(county_id: int, quarter: Quarter, pairings) -> list[Project]:
    """The county's projects of the quarter's year, and earlier ones still moving money in it (programme loaded)."""
    moving = sa.select(FundTransaction.project_id).where(
        FundTransaction.occurred_on.between(quarter.year_to_date.start, quarter.end)
    )
    return list(
        db.session.scalars(
            sa.select(Project)
            .options(joinedload(Project.programme))
            .where(
                Project.county_id == county_id,
                among(Project.pairing_id, pairings),
                sa.or_(Project.year == quarter.year, Project.id.in_(moving)),
            )
            .order_by(Project.year, Project.code)
        )
    )


def fund_cells(project_ids, quarter: Quarter) -> dict[tuple[int, FundSource, FundStage], tuple[int, int, int]]:
    """(project id, source, stage) -> (amount up to the quarter's end, amount dated in the quarter's year up to its
    end, amount within the quarter): 项目累计, 本年度 and 本季度."""
    if not project_ids:
        return {}
    since = lambda day: sa.case((FundTransaction.occurred_on >= day, FundTransaction.amount_fen), else_=0)  # noqa: E731
    amounts = db.session.execute(
        sa.select(
            FundTransaction.project_id,
            FundTransaction.source,
            FundTransaction.stage,
            sa.func.sum(FundTransaction.amount_fen),
            sa.func.sum(since(quarter.year_to_date.start)),
            sa.func.sum(since(quarter.start)),
        )
        .where(FundTransaction.project_id.in_(project_ids), FundTransaction.occurred_on <= quarter.end)
        .group_by(FundTransaction.project_id, FundTransaction.source, FundTransaction.stage)
    ).all()
    return {
        (project_id, FundSource(source), FundStage(stage)): (int(amount or 0), int(in_year or 0), int(in_quarter or 0))
        for project_id, source, stage, amount, in_year, in_quarter in amounts
    }


def monthly_disbursed(counties, pairings, period: Period, programme_ids) -> dict[int, int]:
    """Month number -> money disbursed (拨付) in that month of the period, by projects of these programmes."""
    month = sa.extract("month", FundTransaction.occurred_on)
    stmt = (
        sa.select(month, sa.func.sum(FundTransaction.amount_fen))
        .join(Project, Project.id == FundTransaction.project_id)
        .where(
            Project.county_id.in_(counties),
            among(Project.pairing_id, pairings),
            Project.programme_id.in_(programme_ids),
            FundTransaction.stage == FundStage.DISBURSED,
            FundTransaction.occurred_on.between(period.start, period.end),
        )
        .group_by(month)
    )
    return {int(m): int(amount or 0) for m, amount in db.session.execute(stmt)}


def project_counts_by_county(ids, pairings, period: Period, programme_ids) -> dict[int, int]:
    """County id -> projects of these programmes counted as the 项目数 indicator counts them for ``period``."""
    return {
        county_id: int(n)
        for county_id, n in db.session.execute(
            sa.select(Project.county_id, sa.func.count(Project.id))
            .where(
                Project.county_id.in_(ids),
                among(Project.pairing_id, pairings),
                Project.programme_id.in_(programme_ids),
                counted_projects(period),
            )
            .group_by(Project.county_id)
        )
    }


def money_by_county(ids, pairings, period: Period, programme_ids) -> dict[tuple[int, FundStage], int]:
    """(county id, stage) -> money of the county's projects of these programmes dated within ``period``: the funds
    section's definition, per county."""
    return {
        (county_id, FundStage(stage)): int(amount or 0)
        for county_id, stage, amount in db.session.execute(
            sa.select(Project.county_id, FundTransaction.stage, sa.func.sum(FundTransaction.amount_fen))
            .join(Project, Project.id == FundTransaction.project_id)
            .where(
                Project.county_id.in_(ids),
                among(Project.pairing_id, pairings),
                Project.programme_id.in_(programme_ids),
                FundTransaction.occurred_on.between(period.start, period.end),
            )
            .group_by(Project.county_id, FundTransaction.stage)
        )
    }


# ---- per project, for documents that list projects one by one (disclosure notices) -------------------------------


def source_totals(project_ids) -> dict[int, dict[FundSource, tuple[int, int, int]]]:
    """{project id: {source: (计划, 到位, 拨付)}} from the running totals the fund services keep (exact to the 分)."""
    found: dict[int, dict[FundSource, tuple[int, int, int]]] = {}
    ids = list(project_ids)
    if not ids:
        return found
    rows = db.session.execute(
        sa.select(
            ProjectFunds.project_id,
            ProjectFunds.source,
            ProjectFunds.planned_fen,
            ProjectFunds.arrived_fen,
            ProjectFunds.disbursed_fen,
        ).where(ProjectFunds.project_id.in_(ids))
    )
    for project_id, source, planned, arrived, disbursed in rows:
        found.setdefault(project_id, {})[source] = (planned, arrived, disbursed)
    return found
