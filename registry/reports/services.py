"""The reports module's rules: which quarters may be reported on, and the quarter's narrative (audited)."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from registry.counties.models import Unit
from registry.kernel.audit.services import apply_changes, record
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError, StaleEdit, check_version
from registry.permissions import check_locked_date
from registry.reports.models import NARRATIVE_MAX, QuarterNarrative

#: The first quarter a report may be asked for (粤川 pairing began in 2010; earlier records do not exist).
FIRST_YEAR = 2010


def latest_quarter(today: date | None = None) -> Quarter:
    """The last quarter that has ended: the one a report is usually wanted for."""
    return Quarter.containing(today or date.today()).previous()


def parse_quarter(text: str) -> Quarter:
    """A quarter from the URL; ValueError (Chinese) when malformed, before 2010 or not yet begun."""
    quarter = Quarter.parse(text)
    if quarter.year < FIRST_YEAR:
        raise ValueError(f"季度“{text}”早于 {FIRST_YEAR} 年，没有数据。")
    if quarter.start > date.today():
        raise ValueError(f"{quarter.label}尚未开始。")
    return quarter


FIELDS = ("highlights", "problems", "next_steps")
LABELS = QuarterNarrative.AUDIT_LABELS


def save_narrative(unit: Unit, quarter: Quarter, data: dict, *, actor, version=None) -> dict:
    """Create or change the narrative of ``unit`` for ``quarter``; returns the changes (one audit event).

    A county's narrative is part of its report of record: once the province has approved (locked) the quarter it
    is refused like any record of that quarter, until an unlock is granted.
    """
    check_locked_date(unit.id, quarter.start, field="highlights")
    values = {}
    for key in FIELDS:
        text = (data.get(key) or "").replace("\r\n", "\n").strip()
        if len(text) > NARRATIVE_MAX:
            raise ServiceError(f"“{LABELS[key]}”不能超过 {NARRATIVE_MAX} 字（现为 {len(text)} 字）。", key)
        values[key] = text
    narrative = db.session.scalar(
        sa.select(QuarterNarrative).where(
            QuarterNarrative.unit_id == unit.id,
            QuarterNarrative.year == quarter.year,
            QuarterNarrative.quarter == quarter.number,
        )
    )
    if narrative is None:
        if version:
            raise StaleEdit()  # the page showed a narrative that has since gone
        if not any(values.values()):
            return {}
        narrative = QuarterNarrative(
            unit_id=unit.id, year=quarter.year, quarter=quarter.number, **dict.fromkeys(FIELDS, "")
        )
        db.session.add(narrative)
    else:
        # Version 0 means the page was opened before anyone wrote one: somebody else has saved meanwhile.
        check_version(narrative, version)
    changes = apply_changes(narrative, values, FIELDS)
    if changes:
        narrative.updated_by_name = getattr(actor, "display_name", "") or getattr(actor, "username", "")
        try:
            db.session.flush()
        except IntegrityError as exc:  # two first saves at once: the second is a stale edit
            raise StaleEdit() from exc
        record("update", narrative, actor=actor, summary=f"{unit.name} {quarter.label}报告说明", changes=changes)
    return changes
