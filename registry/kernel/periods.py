"""Reporting periods: date ranges, quarters and years, parsed from and printed as the offices write them."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

QUARTER_RE = re.compile(r"^\s*(\d{4})\s*(?:-?\s*[Qq]|年第?)\s*([1-4])\s*(?:季度)?\s*$")


@dataclass(frozen=True)
class Period:
    """An inclusive date range."""

    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"期间结束日期 {self.end} 早于开始日期 {self.start}")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} 至 {self.end.isoformat()}"


@dataclass(frozen=True)
class Quarter(Period):
    """A calendar quarter; ``str(q)`` is its key, e.g. ``2024Q3``."""

    year: int = 0
    number: int = 0

    @classmethod
    def of(cls, year: int, number: int) -> "Quarter":
        if not 1 <= number <= 4:
            raise ValueError("季度须为 1–4")
        if not 1900 <= year <= 2999:
            raise ValueError("年份超出范围")
        start = date(year, 3 * number - 2, 1)
        end = (date(year, 3 * number, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return cls(start=start, end=end, year=year, number=number)

    @classmethod
    def parse(cls, text: str) -> "Quarter":
        """Read ``2024Q3``, ``2024-Q3`` or ``2024年第3季度``; raise ValueError in Chinese otherwise."""
        match = QUARTER_RE.match(text or "")
        if not match:
            raise ValueError(f"季度“{text}”格式不正确，应为 2024Q3 或 2024年第3季度。")
        return cls.of(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, day: date) -> "Quarter":
        return cls.of(*cls.key_of(day))

    @staticmethod
    def key_of(day: date) -> tuple[int, int]:
        """(year, quarter number) of ``day``, without building the Quarter (an import asks it for every row)."""
        return day.year, (day.month - 1) // 3 + 1

    def __str__(self):
        return f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        return f"{self.year}年第{self.number}季度"

    @property
    def year_to_date(self) -> Period:
        """1 January to the quarter's end (截至季末累计)."""
        return Period(date(self.year, 1, 1), self.end)

    def previous_year(self) -> "Quarter":
        return Quarter.of(self.year - 1, self.number)

    def previous(self) -> "Quarter":
        """The quarter before this one (2024Q1's is 2023Q4)."""
        return Quarter.of(self.year - 1, 4) if self.number == 1 else Quarter.of(self.year, self.number - 1)


def overlaps(start_col, end_col, start: date, end: date):
    """SQL: the period [start_col, end_col] (end NULL = open) intersects [start, end]."""
    return sa.and_(start_col <= end, sa.or_(end_col.is_(None), end_col >= start))


CHINA = timezone(timedelta(hours=8), "CST")


def local_datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a UTC timestamp in China Standard Time, where the offices are."""
    if value is None:
        return ""
    return value.astimezone(CHINA).strftime(fmt)
