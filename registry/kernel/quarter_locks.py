"""Quarters the province has approved (审定) and so locked, per Sichuan county: the lock every write answers to.

The closing composition (``registry.closing``) writes a row when the province approves a county's quarterly report
and deletes it when an unlock is granted. The write gate (``permissions.authorize_write``) asks ``locked_quarter``
about the county and date of every record it lets through, before and after the change, so forms, imports, status
steps, fund transactions and the command line all refuse a write into a locked quarter, and a stream added later
does too. The table lives in the kernel so that the gate need not know the composition that fills it.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from registry.kernel.database import UTCDateTime, utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter


class QuarterLock(db.Model):
    """One county's approved quarter: records of that county dated within it are read-only."""

    __tablename__ = "quarter_locks"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "year", "quarter", name="uq_quarter_locks_unit_quarter"),
        sa.CheckConstraint("quarter BETWEEN 1 AND 4", name="quarter_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    year: Mapped[int]
    quarter: Mapped[int]
    #: The version of record (``report_versions.number``) the approval stored.
    locked_by_version: Mapped[int] = mapped_column(default=1)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self):
        return f"<QuarterLock {self.unit_id} {self.year}Q{self.quarter}>"


class QuarterLocked(ValueError):
    """A write into a locked quarter (the gate turns it into a refusal with a Chinese message)."""

    def __init__(self, quarter: Quarter):
        super().__init__(lock_message(quarter))
        self.quarter = quarter


def lock_message(quarter: Quarter) -> str:
    return (
        f"{quarter.label}的报表已由省协作办审定并锁定，不能新增、修改或删除该季度的记录。"
        "如需更正，请在季度报告页面申请解锁。"
    )


def _locked_set(cache: dict | None) -> set[tuple[int, int, int]] | None:
    """Every (county, year, quarter) locked, loaded once per import (``cache``); None without a cache."""
    if cache is None:
        return None
    if "locked_quarters" not in cache:
        rows = db.session.execute(sa.select(QuarterLock.unit_id, QuarterLock.year, QuarterLock.quarter))
        cache["locked_quarters"] = {tuple(r) for r in rows}
    return cache["locked_quarters"]


def locked_quarter(county_id, day, cache: dict | None = None) -> Quarter | None:
    """The quarter of ``day`` if it is locked for the county ``county_id``; None when either is missing or the
    quarter is open."""
    if county_id is None or not isinstance(day, date):
        return None
    locked = _locked_set(cache)
    if locked is not None:
        # An import asks this twice a row: the quarter is built only for a locked one.
        if (county_id, *Quarter.key_of(day)) not in locked:
            return None
        return Quarter.containing(day)
    quarter = Quarter.containing(day)
    hit = db.session.scalar(
        sa.select(QuarterLock.id).where(
            QuarterLock.unit_id == county_id, QuarterLock.year == quarter.year, QuarterLock.quarter == quarter.number
        )
    )
    return quarter if hit is not None else None


def check_unlocked(county_id, day, cache: dict | None = None) -> None:
    """:raise QuarterLocked: when ``day`` lies in a quarter locked for the county."""
    quarter = locked_quarter(county_id, day, cache)
    if quarter is not None:
        raise QuarterLocked(quarter)
