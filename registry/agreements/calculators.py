"""How each built-in indicator's actual figure is computed from records.

A calculator takes ``(counties, programme_id, period, pairings=None)`` — a SELECT of Sichuan county ids, the
agreement's programme, the date range and optionally a SELECT of the pairing ids to count (an East liaison's own)
— and returns an integer (分 for money). Modules register theirs with ``@calculator("code")``; an indicator
without one is reported as not yet available, never as zero.
"""

from collections.abc import Callable
from datetime import date

import sqlalchemy as sa

from registry.extensions import db

Calculator = Callable[..., int]
CALCULATORS: dict[str, Calculator] = {}
#: Why an indicator has no figure yet, by code (shown in place of a number).
PENDING: dict[str, str] = {}


def among(pairing_col, pairings):
    """WHERE clause limiting records to ``pairings`` (a SELECT of ids), or nothing when it is None."""
    return sa.true() if pairings is None else pairing_col.in_(pairings)


def calculator(code: str):
    """Register the function computing indicator ``code``."""

    def register(fn: Calculator) -> Calculator:
        CALCULATORS[code] = fn
        return fn

    return register


@calculator("fiscal_funds")
def fiscal_funds(counties, programme_id, period, pairings=None) -> int:
    """东部财政援助资金 arrived (到位) in the period, for the programme's projects in the counties."""
    from registry.projects.models import FundSource, FundStage, FundTransaction, Project

    return db.session.scalar(
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


@calculator("project_count")
def project_count(counties, programme_id, period, pairings=None) -> int:
    """Projects of the period's year approved (立项) during the period and not terminated by its end.

    A period from 1 January counts every approval up to its end, including one given the year before (a
    project planned for 2024 may be approved in December 2023); a later period (a quarter) counts the
    approvals within it, so the quarters of a year add up to the year.
    """
    from registry.projects.models import Project

    return db.session.scalar(
        sa.select(sa.func.count(Project.id)).where(
            Project.county_id.in_(counties),
            Project.programme_id == programme_id,
            among(Project.pairing_id, pairings),
            counted_projects(period),
        )
    )


def counted_projects(period):
    """WHERE on Project: the projects ``project_count`` counts for ``period`` (also used grouped by county)."""
    from registry.projects.models import Project, ProjectStatus, StatusChange

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


def _people_placed(counties, programme_id, period, pairings=None, *, lifted_only: bool) -> int:
    """People in work through a placement during the period, each counted once however many placements."""
    from registry.pairings.models import Pairing
    from registry.placements.models import Household, Placement

    stmt = (
        sa.select(sa.func.count(sa.distinct(Placement.id_fingerprint)))
        .join(Pairing, Pairing.id == Placement.pairing_id)
        .where(
            Placement.origin_county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Placement.pairing_id, pairings),
            Placement.start_date <= period.end,
            sa.or_(Placement.end_date.is_(None), Placement.end_date >= period.start),
        )
    )
    if lifted_only:
        stmt = stmt.where(Placement.household == Household.LIFTED)
    return db.session.scalar(stmt)


@calculator("labour_total")
def labour_total(counties, programme_id, period, pairings=None) -> int:
    """帮助农村劳动力就业人数: distinct people with a placement in work during the period."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=False)


@calculator("labour_lifted")
def labour_lifted(counties, programme_id, period, pairings=None) -> int:
    """其中脱贫劳动力: the same, for people of 脱贫户 households."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=True)


@calculator("consumption")
def consumption(counties, programme_id, period, pairings=None) -> int:
    """消费帮扶金额: purchases and helped sales of the counties' sellers in the period (each evidence once)."""
    from registry.pairings.models import Pairing
    from registry.purchases.models import Purchase

    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Purchase.amount_fen), 0))
        .join(Pairing, Pairing.id == Purchase.pairing_id)
        .where(
            Purchase.seller_county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Purchase.pairing_id, pairings),
            Purchase.purchased_on.between(period.start, period.end),
        )
    )


def _in_post(counties, programme_id, period, person_type, pairings=None) -> int:
    """East-to-Sichuan postings of this type in post at any time during the period (到岗人数)."""
    from registry.exchanges.models import Direction, Exchange
    from registry.exchanges.services import in_post
    from registry.pairings.models import Pairing

    return db.session.scalar(
        sa.select(sa.func.count(Exchange.id))
        .join(Pairing, Pairing.id == Exchange.pairing_id)
        .where(
            Exchange.county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Exchange.pairing_id, pairings),
            Exchange.direction == Direction.EAST_TO_WEST,
            Exchange.person_type == person_type,
            in_post(period),
        )
    )


@calculator("cadres")
def cadres(counties, programme_id, period, pairings=None) -> int:
    from registry.exchanges.models import PersonType

    return _in_post(counties, programme_id, period, PersonType.CADRE, pairings)


@calculator("professionals")
def professionals(counties, programme_id, period, pairings=None) -> int:
    from registry.exchanges.models import PersonType

    return _in_post(counties, programme_id, period, PersonType.PROFESSIONAL, pairings)


def _entries(code: str, *, distinct_subjects: bool = False):
    def compute(counties, programme_id, period, pairings=None) -> int:
        from registry.agreements.models import Indicator, IndicatorEntry
        from registry.pairings.models import Pairing

        value = (
            sa.func.count(sa.distinct(IndicatorEntry.subject))
            if distinct_subjects
            else sa.func.sum(IndicatorEntry.value)
        )
        return db.session.scalar(
            sa.select(sa.func.coalesce(value, 0))
            .join(Indicator, Indicator.id == IndicatorEntry.indicator_id)
            .join(Pairing, Pairing.id == IndicatorEntry.pairing_id)
            .where(
                Indicator.code == code,
                IndicatorEntry.county_id.in_(counties),
                Pairing.programme_id == programme_id,
                among(IndicatorEntry.pairing_id, pairings),
                IndicatorEntry.occurred_on.between(period.start, period.end),
            )
        )

    return compute


#: Built-in indicators computed from IndicatorEntry rows (引导企业数: distinct enterprises; 投资额: sum).
ENTRY_CODES = {"enterprises", "investment"}
CALCULATORS["enterprises"] = _entries("enterprises", distinct_subjects=True)
CALCULATORS["investment"] = _entries("investment")


def takes_entries(indicator) -> bool:
    """True if the indicator's figure comes from dated entries rather than a module's records."""
    return indicator.code in ENTRY_CODES or not indicator.is_builtin


def for_indicator(indicator) -> Calculator | None:
    """The calculator of an indicator: its registered one, or a sum of entries for administrator-added ones."""
    if indicator.code in CALCULATORS:
        return CALCULATORS[indicator.code]
    if not indicator.is_builtin:
        return _entries(indicator.code)
    return None
