"""The narrative of a quarterly report (亮点 / 问题 / 下步打算), written by office staff per unit and quarter."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import TimestampMixin, VersionedMixin
from registry.extensions import db

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
