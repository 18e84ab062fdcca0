"""The quarterly figures of a county, prefecture or the province: one query layer for the dashboard and the PDF.

``quarter_figures(unit, quarter, pairings)`` returns plain frozen data (no ORM objects, no identity numbers),
so the page and the report are fed the same numbers and a template cannot reach back into the database.
"""

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements import calculators
from registry.agreements.models import Measure
from registry.agreements.services import active_indicators, agreements_for, counties_within, unit_targets
from registry.assets import figures as asset_figures
from registry.counties.models import Side, Unit, UnitKind
from registry.counties.services import category_on
from registry.evidence.services import quarter_counts as evidence_counts
from registry.exchanges import figures as exchanges
from registry.exchanges.models import Direction, Field, PersonType
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import among
from registry.kernel.extensions import db
from registry.kernel.money import rate
from registry.kernel.periods import Period, Quarter, overlaps
from registry.pairings.models import Pairing, Programme
from registry.pairings.services import partners_during
from registry.placements import figures as placements
from registry.placements.models import Destination
from registry.problems import figures as problem_figures
from registry.projects import figures as projects
from registry.projects.models import FundSource, FundStage, Project, ProjectStatus
from registry.purchases import figures as purchases
from registry.reports.models import QuarterNarrative

# ---- plain data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitInfo:
    id: int
    name: str
    full_name: str
    kind: str
    kind_label: str
    code: str
    category: str

    @property
    def is_county(self) -> bool:
        return self.kind == UnitKind.COUNTY.value


@dataclass(frozen=True)
class Partner:
    """A pairing valid at some time during the quarter, as the cover shows it."""

    east: str
    west: str
    level: str
    programme: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class IndicatorRow:
    """One row of 指标 | 单位 | 年度目标 | 本季度 | 年累计 | 完成率 | 上年同期 (分 for money, counts otherwise)."""

    code: str
    name: str
    is_money: bool
    unit: str
    is_part: bool
    target: int | None
    quarter: int | None
    year_to_date: int | None
    last_year: int | None
    #: Why there is no figure (no source of records); shown instead of numbers.
    pending: str = ""
    #: Why 上年同期 is empty (the programme was not running in that period of the year before).
    no_last_year: str = ""

    @property
    def rate(self) -> Decimal | None:
        return rate(self.year_to_date, self.target)


@dataclass(frozen=True)
class AgreementFigures:
    title: str
    programme: str
    rows: tuple[IndicatorRow, ...]
    #: 年度目标 is the sum of the unit's counties' targets (``agreements.services.unit_targets``), said in the caption.
    summed_targets: bool = False


@dataclass(frozen=True)
class Scope:
    """What a money table counts, printed in its caption: the period its records are dated in (本年度 / 截至季末累计
    / 项目累计), the programmes whose projects count, and whose pairings when the copy is a liaison's."""

    kind: str
    start: date | None
    end: date
    programmes: tuple[str, ...]
    limited_to: str = ""

    @property
    def text(self) -> str:
        period = f"{self.kind}（{self.start} 至 {self.end}）" if self.start else f"{self.kind}（截至 {self.end}）"
        parts = [period, "、".join(self.programmes) or "全部协作计划"]
        if self.limited_to:
            parts.append(f"仅含{self.limited_to}")
        return " · ".join(parts)


@dataclass(frozen=True)
class FundRow:
    """Funds of one source (or a total) at each stage, dated within the table's period, with what was disbursed
    within the quarter."""

    label: str
    planned: int
    arrived: int
    disbursed: int
    quarter_disbursed: int

    @property
    def undisbursed(self) -> int:
        return self.arrived - self.disbursed

    @property
    def usage(self) -> Decimal | None:
        """资金使用率: 拨付 ÷ 到位."""
        return rate(self.disbursed, self.arrived)

    @property
    def amounts(self) -> tuple[int, int, int, int]:
        return (self.planned, self.arrived, self.disbursed, self.quarter_disbursed)


@dataclass(frozen=True)
class FundsSection:
    """二、资金使用情况: money of the report's programmes' projects dated within the year to the quarter's end.

    ``rows`` by source and ``total`` cover the programmes of the summary's agreements, so the 东部财政援助资金 row's
    到位 is the summary's 财政援助资金 年累计; ``earlier`` is the part of the total on projects of other years (money
    still moving on them); ``apart`` lists, per other programme (粤川 legacy, 对口支援), money moving on its projects
    in the counties, shown beside the total and not in it.
    """

    scope: Scope
    rows: tuple[FundRow, ...]
    total: FundRow
    earlier: FundRow
    apart: tuple[FundRow, ...]

    def source(self, label: str) -> FundRow | None:
        return next((r for r in self.rows if r.label == label), None)

    @property
    def amounts(self) -> tuple[int, ...]:
        """Every amount the table prints (for the choice of its unit)."""
        return tuple(a for r in (*self.rows, self.total, self.earlier, *self.apart) for a in r.amounts)


@dataclass(frozen=True)
class ProjectFunds:
    """A project's (or a group's) money of one source: 本年度 (dated in the year to the quarter's end) and 项目累计
    (everything dated up to the quarter's end)."""

    label: str
    year: FundRow
    to_date: FundRow


@dataclass(frozen=True)
class ProjectRow:
    id: int
    code: str
    name: str
    programme: str
    year: int
    category: str
    status: str
    funds: tuple[ProjectFunds, ...]
    total: ProjectFunds
    beneficiaries: int
    beneficiaries_lifted: int
    #: Counted by the 项目数 indicator at the cut-off (立项 or later within the year, not terminated).
    in_count: bool = False


@dataclass(frozen=True)
class ProjectGroup:
    """本年度项目, 往年项目 still moving money, or another programme's projects (``counted`` False: not in the
    section's 合计, as in the funds section)."""

    label: str
    counted: bool
    projects: tuple[ProjectRow, ...]
    total: ProjectFunds

    @property
    def in_count(self) -> int:
        """How many of the group's projects the 项目数 indicator counts."""
        return sum(p.in_count for p in self.projects)


@dataclass(frozen=True)
class ProjectSummaryRow:
    """One line of the projects' summary (``ProjectsSection.summary``): a group's heading (``kind`` "group"), a part
    of it (the year's projects by status, other years' by year: "part"), its subtotal ("subtotal"), the section's
    total ("total"), or another programme's projects beside it ("apart")."""

    kind: str
    label: str
    count: int
    in_count: int
    funds: ProjectFunds
    beneficiaries: int
    beneficiaries_lifted: int
    #: Of the year's projects of one status: how many of them the 项目数 indicator counts, when not all.
    note: str = ""


def _summed_funds(label: str, rows) -> ProjectFunds:
    def total(parts) -> FundRow:
        return FundRow(label, *(sum(r.amounts[i] for r in parts) for i in range(4)))

    rows = list(rows)
    return ProjectFunds(label, total([r.year for r in rows]), total([r.to_date for r in rows]))


def _summary_row(kind: str, label: str, projects, funds: ProjectFunds | None = None) -> ProjectSummaryRow:
    projects = list(projects)
    return ProjectSummaryRow(
        kind=kind, label=label, count=len(projects), in_count=sum(p.in_count for p in projects),
        funds=funds or _summed_funds(label, [p.total for p in projects]),
        beneficiaries=sum(p.beneficiaries for p in projects),
        beneficiaries_lifted=sum(p.beneficiaries_lifted for p in projects),
    )  # fmt: skip


#: The order of the year's projects by status in the summary (the lifecycle's).
STATUS_ORDER = {label: n for n, label in enumerate(ProjectStatus.LABELS.values())}


@dataclass(frozen=True)
class ProjectsSection:
    """三、帮扶项目: the county's projects of the year and those of other years with money dated in it."""

    scope: Scope
    groups: tuple[ProjectGroup, ...]
    total: ProjectFunds

    @property
    def projects(self) -> tuple[ProjectRow, ...]:
        return tuple(p for g in self.groups for p in g.projects)

    def summary(self, year: int) -> tuple[ProjectSummaryRow, ...]:
        """The section in a few lines, as the PDF prints it (the dashboard lists every project): each counted group
        with its parts (the year's projects by status, other years' by year) and subtotal, the total, then each other
        programme's group on one line. Every amount is a sum of the projects' own, so the lines add up to the
        groups' and the section's totals."""
        lines = []
        for g in self.groups:
            if not g.counted:
                lines.append(_summary_row("apart", g.label, g.projects, g.total))
                continue
            lines.append(_summary_row("group", g.label, g.projects, g.total))
            parts: dict[str, list[ProjectRow]] = {}
            this_year = all(p.year == year for p in g.projects)
            for p in g.projects:
                parts.setdefault(p.status if this_year else f"{p.year} 年度项目", []).append(p)
            order = sorted(parts, key=(lambda k: STATUS_ORDER.get(k, len(STATUS_ORDER))) if this_year else None,
                           reverse=not this_year)  # fmt: skip
            for key in order:
                line = _summary_row("part", key, parts[key])
                if this_year and line.in_count < line.count:
                    counted = f"其中 {line.in_count} 个计入项目数" if line.in_count else "不计入项目数"
                    line = replace(line, note=counted)
                lines.append(line)
            lines.append(_summary_row("subtotal", "小计", g.projects, g.total))
        counted = [p for g in self.groups if g.counted for p in g.projects]
        if counted:
            lines.append(_summary_row("total", "合计", counted, self.total))
        return tuple(lines)

    @property
    def amounts(self) -> tuple[int, ...]:
        """Every amount the table prints (for the choice of its unit)."""
        rows = [self.total, *(g.total for g in self.groups), *(f for p in self.projects for f in p.funds)]
        return tuple(a for r in rows for row in (r.year, r.to_date) for a in (row.arrived, row.disbursed))


@dataclass(frozen=True)
class DestinationRow:
    """People in work during the period by destination class; a person counts once per class and once in total."""

    label: str
    quarter: int
    year_to_date: int
    lifted_year_to_date: int


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    counting_type: str
    records: int
    quarter: int
    year_to_date: int


@dataclass(frozen=True)
class PostingRow:
    direction: str
    person_type: str
    field: str
    in_post_quarter: int
    in_post_at_end: int


@dataclass(frozen=True)
class RosterRow:
    name: str
    direction: str
    person_type: str
    field: str
    sending_unit: str
    receiving_unit: str
    position: str
    arrival: date
    departure: date | None


@dataclass(frozen=True)
class CountyRow:
    """One county in a prefecture's or the province's summary, under the definitions of the report's sections:
    项目数 as the summary counts it, money as the funds section (本年度, the report's programmes), people and
    purchases as the labour and consumption sections (本年度, every pairing). The total row (id 0) is the report's
    own figures, which the county rows add up to."""

    id: int
    name: str
    partners: str
    projects: int
    arrived: int
    disbursed: int
    people: int
    people_lifted: int
    consumption: int

    @property
    def usage(self) -> Decimal | None:
        return rate(self.disbursed, self.arrived)


@dataclass(frozen=True)
class Narrative:
    highlights: str = ""
    problems: str = ""
    next_steps: str = ""
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.highlights or self.problems or self.next_steps)


@dataclass(frozen=True)
class QuarterFigures:
    """Everything the dashboard and the report show for one unit and quarter."""

    unit: UnitInfo
    quarter: Quarter
    cutoff: date
    #: county / prefecture / province: chooses the money unit (``registry.kernel.money.money_unit``).
    level: str
    partners: tuple[Partner, ...]
    #: The programmes the money tables count (those of the year's agreements, else of the quarter's partners).
    programmes: tuple[str, ...]
    agreements: tuple[AgreementFigures, ...]
    funds: FundsSection
    projects: ProjectsSection | None
    monthly_disbursed: tuple[tuple[str, int], ...]
    destinations: tuple[DestinationRow, ...]
    people_quarter: int
    people_year_to_date: int
    lifted_year_to_date: int
    channels: tuple[ChannelRow, ...]
    postings: tuple[PostingRow, ...]
    roster: tuple[RosterRow, ...]
    counties: tuple[CountyRow, ...]
    counties_total: CountyRow | None
    narrative: Narrative
    data_version: int
    generated_at: datetime
    #: Whose pairings the figures are limited to, when the viewer sees only some (an East liaison).
    limited_to: str = ""
    #: 资产管护: assets formed this year, the register by state, checks overdue (``assets.figures``).
    assets: asset_figures.AssetsSection | None = None
    #: Per record type of the quarter: records, those with evidence files uploaded by the cut-off, whether files
    #: are required (``evidence.services.EvidenceRow``) — reports/_evidence.html.
    evidence: tuple = ()
    #: 问题整改 (``registry.problems.figures.ProblemsSection``), shown by templates/reports/_problems.html.
    problems: object = None
    #: Sections other compositions add (``SECTIONS``): frozen data, each with the ``template`` that prints it.
    sections: tuple = ()

    @property
    def consumption_quarter(self) -> int:
        return sum(c.quarter for c in self.channels)

    @property
    def consumption_year_to_date(self) -> int:
        return sum(c.year_to_date for c in self.channels)

    @property
    def channel_amounts(self) -> tuple[int, ...]:
        """Every amount the consumption table prints (for the choice of its unit)."""
        rows = [(c.quarter, c.year_to_date) for c in self.channels]
        return (*(a for row in rows for a in row), self.consumption_quarter, self.consumption_year_to_date)

    @property
    def funds_total(self) -> FundRow:
        return self.funds.total

    @property
    def year_scope(self) -> Scope:
        """本年度 over every pairing's records: the labour and consumption sections (each person, evidence once)."""
        return Scope("本年度", self.quarter.year_to_date.start, self.cutoff, (), self.limited_to)


# ---- the query layer --------------------------------------------------------------------------------------------


#: Sections of other compositions (the disclosure status…), registered by the app as it is built, so the report
#: need not know their packages: name -> function (unit, quarter, county ids, pairings) -> frozen section or None.
SECTIONS: dict = {}


def data_version() -> int:
    """The newest audit event: every write leaves one, so a report names the state of the data it was made from."""
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEvent.id), 0)))


def unit_info(unit: Unit, on: date | None = None) -> UnitInfo:
    """The unit as a report names it; ``on`` picks the assistance category valid that day (else the current one)."""
    category = category_on(unit, on) if on is not None else unit.category
    return UnitInfo(
        id=unit.id, name=unit.name, full_name=unit.full_name, kind=unit.kind.value, kind_label=unit.kind.label,
        code=unit.code or "", category=category.label if category else "",
    )  # fmt: skip


LEVELS = {UnitKind.PROVINCE: "province", UnitKind.PREFECTURE: "prefecture", UnitKind.COUNTY: "county"}


def quarter_figures(unit: Unit, quarter: Quarter, pairings=None, limited_to: str = "") -> QuarterFigures:
    """All figures of ``unit`` (a Sichuan county, prefecture or the province) for ``quarter``.

    :param pairings: a SELECT of the pairing ids whose records count (an East liaison's own, see
        ``permissions.report_pairings``); None counts every record.
    :param limited_to: says on the cover, the page and every caption whose pairings the figures are limited to.
    """
    if unit.side is not Side.WEST or unit.kind not in LEVELS:
        raise ValueError("季度报告只针对四川省、市(州)或县(市、区)。")
    # The ids themselves, not a sub-SELECT: ~50 queries filter by them, and PostgreSQL without fresh statistics
    # planned the sub-SELECT as a units scan per placement row (0.5 s for a county instead of 0.07 s).
    counties = list(db.session.scalars(counties_within(unit)))
    ytd = quarter.year_to_date
    partners = _partners(unit, quarter, pairings)
    agreements = _agreements(unit, quarter, counties, pairings)
    programmes = report_programmes(unit, quarter, pairings)
    cutoff = min(quarter.end, date.today())
    funds = funds_section(counties, pairings, quarter, programmes, cutoff, limited_to)
    people_q, _ = placements.people_in_work(counties, pairings, quarter)
    people_y, lifted_y = placements.people_in_work(counties, pairings, ytd)
    channels = _channels(counties, pairings, quarter)
    is_county = unit.kind is UnitKind.COUNTY
    county_rows = () if is_county else _county_rows(unit, quarter, pairings, programmes)
    return QuarterFigures(
        unit=unit_info(unit, quarter.end),
        quarter=quarter,
        cutoff=cutoff,
        level=LEVELS[unit.kind],
        partners=partners,
        programmes=tuple(programmes.values()),
        agreements=agreements,
        funds=funds,
        projects=projects_section(unit, quarter, pairings, programmes, cutoff, limited_to) if is_county else None,
        monthly_disbursed=_monthly_disbursed(counties, pairings, quarter, programmes),
        destinations=_destinations(counties, pairings, quarter),
        people_quarter=people_q,
        people_year_to_date=people_y,
        lifted_year_to_date=lifted_y,
        channels=channels,
        postings=_postings(counties, pairings, quarter),
        roster=_roster(counties, pairings, quarter) if is_county else (),
        counties=county_rows,
        counties_total=None if is_county else CountyRow(
            id=0, name="合计", partners="", projects=sum(c.projects for c in county_rows),
            arrived=funds.total.arrived, disbursed=funds.total.disbursed, people=people_y, people_lifted=lifted_y,
            consumption=sum(c.year_to_date for c in channels),
        ),
        narrative=narrative_of(unit.id, quarter),
        data_version=data_version(),
        generated_at=datetime.now(UTC),
        limited_to=limited_to,
        assets=asset_figures.report_section(counties, pairings, quarter, cutoff),
        evidence=evidence_counts(quarter.start, quarter.end, counties, pairings, cutoff),
        problems=problem_figures.report_section(unit, quarter.start, cutoff, pairings),
        sections=tuple(s for add in SECTIONS.values() if (s := add(unit, quarter, counties, pairings)) is not None),
    )  # fmt: skip


def report_programmes(unit: Unit, quarter: Quarter, pairings=None) -> dict[int, str]:
    """Programme id -> name of the programmes the report's money tables count: those of the year's agreements
    concerning the unit (the summary's), else those of the pairings valid during the quarter."""
    agreements = agreements_for(unit, quarter.year)
    if pairings is not None:
        own = set(db.session.scalars(sa.select(Pairing.programme_id).where(Pairing.id.in_(pairings))))
        agreements = [a for a in agreements if a.programme_id in own]
    if agreements:
        return {a.programme_id: a.programme.name for a in agreements}
    found = {}
    for p in partners_during(unit.id, quarter, include_parents=unit.kind is UnitKind.COUNTY,
                             where=among(Pairing.id, pairings)):  # fmt: skip
        found.setdefault(p.programme_id, p.programme.name)
    return found


def _partners(unit: Unit, quarter: Quarter, pairings) -> tuple[Partner, ...]:
    where = among(Pairing.id, pairings)
    include_parents = unit.kind is UnitKind.COUNTY
    pairings = partners_during(unit.id, quarter, include_parents=include_parents, where=where)
    if unit.kind is UnitKind.PROVINCE:
        pairings = [p for p in pairings if p.west_unit_id == unit.id]
    return tuple(
        Partner(
            east=p.east_unit.display_name,
            west=p.west_unit.display_name,
            level=p.level.label,
            programme=p.programme.name,
            valid_from=p.valid_from,
            valid_to=p.valid_to,
        )  # fmt: skip
        for p in pairings
    )


def _agreements(unit: Unit, quarter: Quarter, counties, pairings, codes=None) -> tuple[AgreementFigures, ...]:
    """The summary table per agreement of the quarter's year: target, quarter, year to date, 完成率, 上年同期.

    :param codes: only these indicators (the reconciliation tests compute the rows they check, not all nine).
    """
    year = quarter.year
    agreements = agreements_for(unit, year)
    if pairings is not None:
        own = set(db.session.scalars(sa.select(Pairing.programme_id).where(Pairing.id.in_(pairings))))
        agreements = [a for a in agreements if a.programme_id in own]
    if not agreements:
        return ()
    indicators = active_indicators()
    # The ranking's, the home page's and the dashboard's definition: a prefecture or the province without targets
    # of its own reports its counties' sum.
    targets = unit_targets([a.id for a in agreements], [unit], {unit.id: list(counties)})
    last_period = quarter.previous_year().year_to_date
    result = []
    for agreement in agreements:
        # 上年同期 needs no agreement last year, only the programme running then (浙川 has none before 2021-04).
        programme = agreement.programme
        has_last = (programme.starts_on is None or programme.starts_on <= last_period.end) and (
            programme.ends_on is None or programme.ends_on >= last_period.start
        )
        rows = []
        for indicator in indicators:
            if codes is not None and indicator.code not in codes:
                continue
            calculate = calculators.for_indicator(indicator)

            def figure(period: Period, calculate=calculate, programme_id=agreement.programme_id):
                return None if calculate is None else int(calculate(counties, programme_id, period, pairings))

            rows.append(
                IndicatorRow(
                    code=indicator.code,
                    name=indicator.name,
                    is_money=indicator.measure is Measure.MONEY,
                    unit=indicator.unit,
                    is_part=indicator.parent_id is not None,
                    target=targets[(agreement.id, unit.id)].values.get(indicator.id),
                    quarter=figure(quarter),
                    year_to_date=figure(quarter.year_to_date),
                    last_year=figure(last_period) if has_last else None,
                    pending="" if calculate else calculators.PENDING.get(indicator.code, "暂无统计来源"),
                    no_last_year="" if has_last else f"{programme.name}在上年同期尚未开展或已结束",
                )
            )
        result.append(
            AgreementFigures(
                title=agreement.title,
                programme=agreement.programme.name,
                rows=tuple(rows),
                summed_targets=targets[(agreement.id, unit.id)].summed,
            )  # fmt: skip
        )
    return tuple(result)


def _fund_row(label: str, cells: dict[tuple[FundStage, int], int] | None = None, *, index=(0, 1)) -> FundRow:
    """A FundRow from {(stage, i): amount}: ``index`` picks the period amount and the quarter's amount."""
    cells = cells or {}
    period, recent = index
    return FundRow(
        label=label,
        planned=cells.get((FundStage.PLANNED, period), 0),
        arrived=cells.get((FundStage.ARRIVED, period), 0),
        disbursed=cells.get((FundStage.DISBURSED, period), 0),
        quarter_disbursed=cells.get((FundStage.DISBURSED, recent), 0),
    )


def _add(into: dict, stage: FundStage, amounts) -> None:
    for i, amount in enumerate(amounts):
        into[(stage, i)] = into.get((stage, i), 0) + amount


def other_years_label(year: int, years) -> str:
    """The name of the projects of other years that still move money in ``year`` (almost always earlier ones)."""
    return "往年项目" if all(y < year for y in years) else "其他年度项目"


def funds_section(
    counties, pairings, quarter: Quarter, programmes: dict[int, str], cutoff: date, limited_to: str = ""
) -> FundsSection:
    """The funds section: money dated within the year to the quarter's end, of the projects in the counties, by
    source for the report's programmes, with the part on other years' projects and other programmes apart."""
    year = quarter.year
    by_source: dict[FundSource, dict] = {}
    total: dict = {}
    earlier: dict = {}
    earlier_years = set()
    apart: dict[int, dict] = {}
    names = dict(programmes)
    for programme_id, project_year, source, stage, amount, recent in projects.year_money(
        counties, pairings, quarter.year_to_date, recent_from=quarter.start
    ):
        if programme_id in programmes:
            _add(by_source.setdefault(source, {}), stage, (amount, recent))
            _add(total, stage, (amount, recent))
            if project_year != year:
                earlier_years.add(project_year)
                _add(earlier, stage, (amount, recent))
        else:
            _add(apart.setdefault(programme_id, {}), stage, (amount, recent))
    if apart:
        names.update(db.session.execute(sa.select(Programme.id, Programme.name).where(Programme.id.in_(apart))).all())
    return FundsSection(
        scope=Scope("本年度", quarter.year_to_date.start, cutoff, tuple(programmes.values()), limited_to),
        rows=tuple(_fund_row(source.label, by_source[source]) for source in FundSource if source in by_source),
        total=_fund_row("合计", total),
        earlier=_fund_row(f"其中：{other_years_label(year, earlier_years)}（本年度仍有资金往来）", earlier),
        apart=tuple(
            _fund_row(f"另：{names[pid]}项目（不计入合计）", cells)
            for pid, cells in sorted(apart.items(), key=lambda item: names[item[0]])
        ),
    )


def _project_funds(label: str, cells: dict) -> ProjectFunds:
    """cells: {(stage, i): amount} with i = 0 项目累计, 1 本年度, 2 本季度."""
    return ProjectFunds(label, _fund_row(label, cells, index=(1, 2)), _fund_row(label, cells, index=(0, 2)))


def projects_section(unit: Unit, quarter: Quarter, pairings, programmes: dict[int, str], cutoff: date,
                     limited_to: str = "") -> ProjectsSection:  # fmt: skip
    """The county's projects of the quarter's year and those of other years with money dated in it, grouped as
    the funds section counts them, each group and the section with a total row."""
    year = quarter.year
    listed = projects.year_projects(unit.id, quarter, pairings)
    cells = projects.fund_cells([p.id for p in listed], quarter)
    # The projects the summary's 项目数 counts (year to date), so the table says which of its projects those are.
    in_count = set(
        db.session.scalars(
            sa.select(Project.id).where(
                Project.id.in_([p.id for p in listed]), projects.counted_projects(quarter.year_to_date)
            )
        )
    ) if listed else set()  # fmt: skip
    # Groups: ("counted", True) the year's projects, ("counted", False) other years', ("apart", programme id).
    rows: dict[tuple, list[ProjectRow]] = {}
    sums: dict[tuple, dict] = {}
    years: dict[tuple, set] = {}
    for p in listed:
        funds, total = [], {}
        for source in FundSource:
            mine = {}
            for stage in FundStage:
                if (p.id, source, stage) in cells:
                    _add(mine, stage, cells[(p.id, source, stage)])
                    _add(total, stage, cells[(p.id, source, stage)])
            if mine:
                funds.append(_project_funds(source.label, mine))
        key = ("counted", p.year == year) if p.programme_id in programmes else ("apart", p.programme_id)
        rows.setdefault(key, []).append(
            ProjectRow(
                id=p.id,
                code=p.code,
                name=p.name,
                programme=p.programme.name,
                year=p.year,
                category=p.category.label,
                status=p.status.label,
                funds=tuple(funds),
                total=_project_funds("合计", total),
                beneficiaries=p.beneficiaries,
                beneficiaries_lifted=p.beneficiaries_lifted,
                in_count=p.id in in_count and p.year == year,
            )  # fmt: skip
        )
        group_sum = sums.setdefault(key, {})
        for cell, amount in total.items():
            group_sum[cell] = group_sum.get(cell, 0) + amount
        years.setdefault(key, set()).add(p.year)
    groups = []
    counted_sum: dict = {}
    for key, label in ((("counted", True), f"{year} 年度项目"), (("counted", False), None)):
        if key in rows:
            label = label or f"{other_years_label(year, years[key])}（本年度仍有资金往来）"
            groups.append(ProjectGroup(label, True, tuple(rows[key]), _project_funds("小计", sums[key])))
            for cell, amount in sums[key].items():
                counted_sum[cell] = counted_sum.get(cell, 0) + amount
    others = sorted((k for k in rows if k[0] == "apart"), key=lambda k: rows[k][0].programme)
    for key in others:
        label = f"另：{rows[key][0].programme}项目（本年度有资金往来，不计入合计）"
        groups.append(ProjectGroup(label, False, tuple(rows[key]), _project_funds("小计", sums[key])))
    return ProjectsSection(
        scope=Scope("本年度", quarter.year_to_date.start, cutoff, tuple(programmes.values()), limited_to),
        groups=tuple(groups),
        total=_project_funds("合计", counted_sum),
    )


def _monthly_disbursed(counties, pairings, quarter: Quarter, programmes) -> tuple[tuple[str, int], ...]:
    """Money disbursed (拨付) per month from January to the quarter's last month, as the funds section counts it."""
    by_month = projects.monthly_disbursed(counties, pairings, quarter.year_to_date, list(programmes))
    return tuple((f"{m}月", by_month.get(m, 0)) for m in range(1, quarter.end.month + 1))


def _destinations(counties, pairings, quarter: Quarter) -> tuple[DestinationRow, ...]:
    in_quarter = placements.people_by_destination(counties, pairings, quarter)
    ytd = placements.people_by_destination(counties, pairings, quarter.year_to_date)
    lifted = placements.people_by_destination(counties, pairings, quarter.year_to_date, lifted_only=True)
    return tuple(DestinationRow(d.label, in_quarter.get(d, 0), ytd.get(d, 0), lifted.get(d, 0)) for d in Destination)


def _channels(counties, pairings, quarter: Quarter) -> tuple[ChannelRow, ...]:
    return tuple(
        ChannelRow(name, kind.label, n, q, y)
        for name, kind, n, q, y in purchases.by_channel(
            counties, pairings, quarter.year_to_date, recent_from=quarter.start
        )
    )


def _postings(counties, pairings, quarter: Quarter) -> tuple[PostingRow, ...]:
    """People in post during the quarter and on its last day, by direction, type and field."""
    during = exchanges.postings_by_kind(counties, pairings, quarter)
    at_end = exchanges.postings_by_kind(counties, pairings, Period(quarter.end, quarter.end))
    order = [(d, t, f) for d in Direction for t in PersonType for f in [None, *Field]]
    return tuple(
        PostingRow(key[0].label, key[1].label, key[2].label if key[2] else "", during[key], at_end.get(key, 0))
        for key in order
        if key in during
    )


def _roster(counties, pairings, quarter: Quarter) -> tuple[RosterRow, ...]:
    return tuple(
        RosterRow(
            name=e.person_name,
            direction=e.direction.label,
            person_type=e.person_type.label,
            field=e.field.label if e.field else "",
            sending_unit=e.sending_unit,
            receiving_unit=e.receiving_unit,
            position=e.position,
            arrival=e.arrival_date,
            departure=e.departure_date,
        )  # fmt: skip
        for e in exchanges.roster(counties, pairings, quarter)
    )


def paired_counties(unit: Unit, quarter: Quarter, pairings=None) -> list[Unit]:
    """Sichuan counties within ``unit`` that had a county-level pairing at some time during the quarter."""

    stmt = (
        sa.select(Unit)
        .join(Pairing, Pairing.west_unit_id == Unit.id)
        .where(
            Unit.id.in_(counties_within(unit)),
            overlaps(Pairing.valid_from, Pairing.valid_to, quarter.start, quarter.end),
            among(Pairing.id, pairings),
        )
        .distinct()
        .order_by(Unit.code)
    )
    return list(db.session.scalars(stmt))


def _county_rows(unit: Unit, quarter: Quarter, pairings, programmes) -> tuple[CountyRow, ...]:
    """Year-to-date key figures per county within a prefecture or the province, in few grouped queries: every
    county paired in the quarter, and any other with a figure (a county whose pairing has ended may still move
    money on its projects), so that the rows add up to the report's totals."""
    ytd = quarter.year_to_date
    within = counties_within(unit)
    project_counts = projects.project_counts_by_county(within, pairings, ytd, list(programmes))
    money = projects.money_by_county(within, pairings, ytd, list(programmes))
    people = placements.people_by_county(within, pairings, ytd)
    consumption = purchases.amount_by_county(within, pairings, ytd)
    with_figures = {*project_counts, *(c for c, _ in money), *people, *consumption}
    paired = {c.id for c in paired_counties(unit, quarter, pairings)}
    counties = db.session.scalars(sa.select(Unit).where(Unit.id.in_(paired | with_figures)).order_by(Unit.code)).all()
    if not counties:
        return ()
    ids = [c.id for c in counties]
    partners: dict[int, list[str]] = {}
    for p in db.session.scalars(
        sa.select(Pairing)
        .options(joinedload(Pairing.east_unit))
        .where(
            Pairing.west_unit_id.in_(ids),
            overlaps(Pairing.valid_from, Pairing.valid_to, quarter.start, quarter.end),
            among(Pairing.id, pairings),
        )
        .order_by(Pairing.valid_from)
    ):
        partners.setdefault(p.west_unit_id, []).append(p.east_unit.display_name)
    return tuple(
        CountyRow(
            id=c.id,
            name=c.name,
            partners="、".join(dict.fromkeys(partners.get(c.id, []))) or "（本季度无结对）",
            projects=int(project_counts.get(c.id, 0)),
            arrived=money.get((c.id, FundStage.ARRIVED), 0),
            disbursed=money.get((c.id, FundStage.DISBURSED), 0),
            people=people.get(c.id, (0, 0))[0],
            people_lifted=people.get(c.id, (0, 0))[1],
            consumption=int(consumption.get(c.id) or 0),
        )  # fmt: skip
        for c in counties
    )


def narrative_row(unit_id: int, quarter: Quarter) -> QuarterNarrative | None:
    """The stored narrative of a unit's quarter, if one was written."""
    return db.session.scalar(
        sa.select(QuarterNarrative).where(
            QuarterNarrative.unit_id == unit_id,
            QuarterNarrative.year == quarter.year,
            QuarterNarrative.quarter == quarter.number,
        )
    )


def narrative_of(unit_id: int, quarter: Quarter) -> Narrative:
    row = narrative_row(unit_id, quarter)
    if row is None:
        return Narrative()
    return Narrative(
        highlights=row.highlights, problems=row.problems, next_steps=row.next_steps,
        updated_by=row.updated_by_name, updated_at=row.updated_at,
    )  # fmt: skip


def summary_units() -> list[Unit]:
    """The units with summary reports: the province of Sichuan, then its prefectures, in code order."""
    province = db.session.scalar(
        sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind == UnitKind.PROVINCE).order_by(Unit.code).limit(1)
    )
    if province is None:
        return []
    stmt = sa.select(Unit).where(Unit.parent_id == province.id, Unit.kind == UnitKind.PREFECTURE).order_by(Unit.code)
    return [province, *db.session.scalars(stmt)]
