"""How each built-in indicator's actual figure is computed from records.

A calculator takes ``(counties, programme_id, period, pairings=None)`` — a SELECT of Sichuan county ids, the
agreement's programme, the date range and optionally a SELECT of the pairing ids to count (an East liaison's own)
— and returns an integer (分 for money); with ``units={unit id: its county ids}`` it returns {unit id: integer} for
many units in one pass (the ranking and the home pages: ``services.progress_many``). Each module computes its own
indicators in its ``figures.py``; the table below says which function computes which indicator code. An indicator
without one is reported as not yet available, never as zero.
"""

from collections.abc import Callable

import sqlalchemy as sa

from registry.agreements.models import Indicator, IndicatorEntry
from registry.exchanges import figures as exchanges
from registry.kernel.database import among, per_unit
from registry.kernel.extensions import db
from registry.pairings.models import Pairing
from registry.placements import figures as placements
from registry.projects import figures as projects
from registry.purchases import figures as purchases

Calculator = Callable[..., int]
#: Indicator code -> the module function computing it.
CALCULATORS: dict[str, Calculator] = {
    "fiscal_funds": projects.fiscal_funds,
    "project_count": projects.project_count,
    "labour_total": placements.labour_total,
    "labour_lifted": placements.labour_lifted,
    "consumption": purchases.consumption,
    "cadres": exchanges.cadres,
    "professionals": exchanges.professionals,
    "cadres_to_east": exchanges.cadres_to_east,
    "professionals_to_east": exchanges.professionals_to_east,
}
#: Why an indicator has no figure yet, by code (shown in place of a number).
PENDING: dict[str, str] = {}


def _entries(code: str, *, distinct_subjects: bool = False):
    def compute(counties, programme_id, period, pairings=None, *, units=None):
        where = (
            Indicator.code == code,
            IndicatorEntry.county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(IndicatorEntry.pairing_id, pairings),
            IndicatorEntry.occurred_on.between(period.start, period.end),
        )

        def joined(stmt):
            return (
                stmt.join(Indicator, Indicator.id == IndicatorEntry.indicator_id)
                .join(Pairing, Pairing.id == IndicatorEntry.pairing_id)
                .where(*where)
            )

        if distinct_subjects and units is not None:
            # Distinct enterprises are not additive over counties: each unit's set of subjects.
            subjects: dict[int, set] = {}
            for county, subject in db.session.execute(
                joined(sa.select(IndicatorEntry.county_id, IndicatorEntry.subject).distinct())
            ):
                subjects.setdefault(county, set()).add(subject)
            return {unit: len(set().union(*(subjects.get(c, set()) for c in ids))) for unit, ids in units.items()}
        value = (
            sa.func.count(sa.distinct(IndicatorEntry.subject))
            if distinct_subjects
            else sa.func.sum(IndicatorEntry.value)
        )
        stmt = joined(sa.select(sa.func.coalesce(value, 0)))
        return db.session.scalar(stmt) if units is None else per_unit(db.session, stmt, IndicatorEntry.county_id, units)

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
