"""The narrative of a quarterly report (亮点 / 问题 / 下步打算), written by office staff per unit and quarter."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, utcnow
from registry.kernel.extensions import db

#: Longest narrative section accepted (characters); a report page holds about 1,500.
NARRATIVE_MAX = 5000


class QuarterNarrative(TimestampMixin, VersionedMixin, db.Model):
    """亮点, 问题 and 下步打算 of one Sichuan unit's report for one quarter."""

    __tablename__ = "quarter_narratives"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "year", "quarter", name="uq_quarter_narratives_unit_quarter"),
        sa.CheckConstraint("quarter BETWEEN 1 AND 4", name="quarter_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    year: Mapped[int]
    quarter: Mapped[int]
    highlights: Mapped[str] = mapped_column(sa.Text, default="")
    problems: Mapped[str] = mapped_column(sa.Text, default="")
    next_steps: Mapped[str] = mapped_column(sa.Text, default="")
    updated_by_name: Mapped[str] = mapped_column(sa.String(100), default="")

    unit: Mapped["Unit"] = relationship()  # noqa: F821

    AUDIT_LABELS = {"highlights": "亮点", "problems": "问题", "next_steps": "下步打算"}

    def __repr__(self):
        return f"<QuarterNarrative {self.unit_id} {self.year}Q{self.quarter}>"


class ReportCache(db.Model):
    """Figures (pickled ``QuarterFigures``) and PDF bytes of a report, kept until the data change.

    A row holds for one unit, quarter, viewer scope (``scope``: "all", or a digest of an East liaison's pairings
    and, for a PDF, the preparer on its cover), cut-off day and data version; see ``registry.reports.cache``.
    In the database, so every worker process and application host shares it, and a restored backup brings
    its own (consistent) cache along. Rows of older data versions are deleted as new ones are written.
    """

    __tablename__ = "report_cache"
    __table_args__ = (
        sa.UniqueConstraint("kind", "unit_id", "quarter", "scope", "cutoff", "version", name="uq_report_cache_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "figures" or "pdf".
    kind: Mapped[str] = mapped_column(sa.String(10))
    #: No foreign key: a cache row must never stand in the way of changing or removing a unit.
    unit_id: Mapped[int]
    quarter: Mapped[str] = mapped_column(sa.String(6))
    scope: Mapped[str] = mapped_column(sa.String(80))
    #: The quarter's end, or the day the figures were made while the quarter is running (it moves daily).
    cutoff: Mapped[date]
    version: Mapped[str] = mapped_column(sa.String(40), index=True)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self):
        return f"<ReportCache {self.kind} {self.unit_id} {self.quarter} {self.scope} v{self.version}>"
