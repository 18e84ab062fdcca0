"""Reading the ledger: the list's filters (shared by the list and its export), counts per unit and state, the
share closed by the deadline, and the links a reader may see."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from registry.counties.models import Unit, UnitKind
from registry.kernel import search
from registry.kernel.extensions import db
from registry.kernel.web import is_id, is_year, like_pattern
from registry.permissions import linkable_model, scope_filter, visible_record, visible_records
from registry.problems.models import Category, Problem, Source, State
from registry.problems.services import LINK_TYPES, overdue_clause

FILTER_KEYS = ("q", "unit", "source", "year", "batch", "category", "state", "overdue", "level")
LEVELS = {"county": UnitKind.COUNTY, "prefecture": UnitKind.PREFECTURE, "province": UnitKind.PROVINCE}


def filtered(args: dict, user, today: date | None = None) -> sa.Select:
    """Scope first, then the ledger's filters: unit (a county, or a prefecture with its counties), source, year,
    batch, category, state, overdue, and the level of the unit concerned."""
    today = today or date.today()
    stmt = sa.select(Problem).where(scope_filter(user, Problem))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Problem.description.like(pattern), Problem.responsible_unit.like(pattern),
                                 Problem.lead_unit.like(pattern)))  # fmt: skip
    if is_id(args.get("unit")):
        unit_id = int(args["unit"])
        within = sa.select(Unit.id).where(sa.or_(Unit.id == unit_id, Unit.prefecture_id == unit_id))
        stmt = stmt.where(Problem.unit_id.in_(within))
    if args.get("level") in LEVELS:
        stmt = stmt.where(Problem.unit_id.in_(sa.select(Unit.id).where(Unit.kind == LEVELS[args["level"]])))
    if args.get("source") in Source._value2member_map_:
        stmt = stmt.where(Problem.source == args["source"])
    if is_year(args.get("year")):
        stmt = stmt.where(Problem.year == int(args["year"]))
    if args.get("batch"):
        stmt = stmt.where(Problem.batch == args["batch"])
    if args.get("category") in Category._value2member_map_:
        stmt = stmt.where(Problem.category == args["category"])
    if args.get("state") in State._value2member_map_:
        stmt = stmt.where(Problem.state == args["state"])
    if args.get("overdue") == "1":
        stmt = stmt.where(overdue_clause(today))
    return stmt


@dataclass
class UnitCounts:
    unit_id: int
    name: str
    by_state: dict
    overdue: int
    total: int


def counts_by_unit(stmt: sa.Select, today: date | None = None) -> list[UnitCounts]:
    """Per unit concerned (county, prefecture or province): problems per state, and overdue ones."""
    today = today or date.today()
    sub = stmt.order_by(None).subquery()
    unit = aliased(Unit)
    overdue = sa.and_(sub.c.state != State.CLOSED.value, sub.c.deadline.is_not(None), sub.c.deadline < today)
    rows = db.session.execute(
        sa.select(sub.c.unit_id, unit.name, unit.code, sub.c.state, sa.func.count(),
                  sa.func.sum(sa.case((overdue, 1), else_=0)))
        .join(unit, unit.id == sub.c.unit_id)
        .group_by(sub.c.unit_id, unit.name, unit.code, sub.c.state)
        .order_by(unit.code)
    )  # fmt: skip
    found: dict[int, UnitCounts] = {}
    for unit_id, name, _code, state, n, late in rows:
        row = found.setdefault(unit_id, UnitCounts(unit_id, name, {}, 0, 0))
        row.by_state[State(state)] = n
        row.overdue += int(late or 0)
        row.total += n
    return list(found.values())


@dataclass
class Summary:
    total: int
    closed: int
    closed_in_time: int
    overdue: int
    with_deadline_due: int
    amount_fen: int
    rectified_fen: int

    @property
    def in_time_share(self) -> str:
        """已到期问题中按期销号的比例."""
        if not self.with_deadline_due:
            return "—"
        return f"{self.closed_in_time * 100 / self.with_deadline_due:.1f}%"


def summary(stmt: sa.Select, today: date | None = None) -> Summary:
    """Totals of the listed problems: closed, closed by the deadline (of those whose deadline has come or that are
    closed), overdue, and the money involved and put right."""
    today = today or date.today()
    sub = stmt.order_by(None).subquery()
    closed = sub.c.state == State.CLOSED.value
    in_time = sa.and_(closed, sa.or_(sub.c.deadline.is_(None), sub.c.closed_on <= sub.c.deadline))
    due = sa.or_(closed, sa.and_(sub.c.deadline.is_not(None), sub.c.deadline < today))
    late = sa.and_(~closed, sub.c.deadline.is_not(None), sub.c.deadline < today)

    def count(condition):
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        sa.select(sa.func.count(), count(closed), count(in_time), count(late), count(due),
                  sa.func.coalesce(sa.func.sum(sub.c.amount_fen), 0),
                  sa.func.coalesce(sa.func.sum(sub.c.rectified_fen), 0))
    ).one()  # fmt: skip
    return Summary(*(int(v) for v in row))


def batches(user) -> list[str]:
    stmt = sa.select(Problem.batch).where(scope_filter(user, Problem), Problem.batch != "").distinct()
    return sorted(db.session.scalars(stmt))


def visible_links(user, problem: Problem) -> list[tuple]:
    """(link, record, type label) of the problem's links whose record ``user`` may see; the others are left out."""
    shown = []
    for link in problem.links:
        record = visible_record(user, link.record_type, link.record_id)
        if record is not None:
            shown.append((link, record, LINK_TYPES.get(link.record_type, link.record_type)))
    return shown


def record_label(record) -> str:
    """A few words naming a linked record (its code and name, a person, a product, an amount)."""
    parts = [str(getattr(record, a)) for a in ("code", "name", "person_name", "product", "subject", "evidence_no")
             if getattr(record, a, None)]  # fmt: skip
    if not parts and getattr(record, "amount_fen", None) is not None:
        stage = getattr(record, "stage", None)
        day = getattr(record, "occurred_on", "")
        parts = [f"{stage.label if stage else ''} {record.amount_fen / 100:,.2f} 元 {day}".strip()]
    return " ".join(parts[:2]) or f"#{record.id}"


#: What a record to link is found by: its code or number, name, the person, the seller, product or voucher.
LINK_SEARCH = ("code", "number", "name", "person_name", "seller_name", "product", "evidence_no", "voucher_no")


def link_candidates(user, record_type: str, text: str, limit: int = 20) -> list[tuple[int, str]]:
    """Records of ``record_type`` the user may see matching ``text`` (any of ``LINK_SEARCH``, or the 记录编号 when
    it is a number), newest first, as (id, label): the picker of 关联记录. Searched lists use their keyword index."""
    text = (text or "").strip()[:50]
    stmt = visible_records(user, record_type)
    if stmt is None or not text:
        return []
    cls = linkable_model(record_type)
    if cls.__tablename__ in search.SEARCHED:
        matches = [search.keyword(cls, text)]
    else:
        pattern = like_pattern(text)
        columns = sa.inspect(cls).columns
        matches = [
            columns[a].like(pattern) for a in LINK_SEARCH if a in columns and isinstance(columns[a].type, sa.String)
        ]
    if text.isdigit() and len(text) < 12:
        matches.append(cls.id == int(text))
    if not matches:
        return []
    found = db.session.scalars(stmt.where(sa.or_(*matches)).order_by(cls.id.desc()).limit(limit))
    return [(record.id, record_label(record)) for record in found]
