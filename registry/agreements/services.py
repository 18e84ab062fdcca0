"""Agreements and targets (writes, audited), indicator entries, and the progress service behind every 完成率."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from registry.agreements import calculators
from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Measure, Target
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.money import rate
from registry.kernel.periods import Period
from registry.kernel.services import ServiceError, check_version
from registry.kernel.transfer import written
from registry.pairings.models import Pairing, Programme
from registry.permissions import authorize_write
from registry.projects.services import pairing_choices

AGREEMENT_FIELDS = ("programme_id", "year", "title", "signed_on", "note")
INDICATOR_FIELDS = ("code", "name", "measure", "unit", "parent_id", "sort_order", "is_active", "description")
ENTRY_FIELDS = ("indicator_id", "county_id", "pairing_id", "occurred_on", "value", "subject", "evidence", "note")


# ---- progress: the one place actual figures and 完成率 come from -------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """One indicator of one agreement for one unit up to a cut-off date. Plain data, safe for templates and PDFs."""

    indicator_id: int
    code: str
    name: str
    measure: Measure
    unit: str
    is_part: bool
    target: int | None
    actual: int | None
    #: Why there is no actual figure (the module that will compute it is not there yet).
    pending: str = ""
    #: The target is the sum of the unit's counties' targets: a prefecture or the province without targets of its
    #: own in the agreement (``unit_targets``).
    summed_target: bool = False

    @property
    def available(self) -> bool:
        return self.actual is not None

    @property
    def rate(self):
        """完成率 in percent, or None when there is no target or no actual figure."""
        return rate(self.actual, self.target)


def counties_within(unit: Unit) -> sa.Select:
    """SELECT of the Sichuan county ids inside ``unit`` (the province, a prefecture, or the county itself)."""
    column = {UnitKind.PROVINCE: Unit.province_id, UnitKind.PREFECTURE: Unit.prefecture_id}.get(unit.kind, Unit.id)
    return sa.select(Unit.id).where(column == unit.id, Unit.kind == UnitKind.COUNTY)


def progress(agreement: Agreement, unit: Unit, cutoff: date | None = None) -> list[Progress]:
    """Target, actual and 完成率 of every active indicator for ``unit`` from 1 January to ``cutoff``.

    The actual covers records of the agreement's programme only, so a county that changed partner within
    the year counts each programme's records against that programme's agreement.
    """
    return progress_many(agreement, [unit], cutoff)[unit.id]


def counties_of(units: list[Unit]) -> dict[int, list[int]]:
    """{unit id: the Sichuan county ids inside it} for many units in one query."""
    wanted = {u.id: u for u in units}
    result: dict[int, list[int]] = {u.id: [] for u in units}
    for county_id, province_id, prefecture_id in db.session.execute(
        sa.select(Unit.id, Unit.province_id, Unit.prefecture_id).where(
            Unit.kind == UnitKind.COUNTY,
            sa.or_(Unit.id.in_(wanted), Unit.prefecture_id.in_(wanted), Unit.province_id.in_(wanted)),
        )
    ):
        for owner in {county_id, prefecture_id, province_id}:
            if owner in result:
                result[owner].append(county_id)
    return result


def progress_many(agreement: Agreement, units: list[Unit], cutoff: date | None = None) -> dict[int, list[Progress]]:
    """``progress`` of many units at once: one query per indicator for all of them (``calculators``' ``units``
    mode), not one per unit — the ranking's 68 counties and the home pages read it. Each unit's figures are exactly
    its own ``progress`` (people counted once per unit)."""
    year_end = date(agreement.year, 12, 31)
    cutoff = min(cutoff or year_end, year_end)
    period = Period(date(agreement.year, 1, 1), max(cutoff, date(agreement.year, 1, 1)))
    counties = counties_of(units)
    targets = unit_targets([agreement.id], units, counties)
    every = sorted({c for ids in counties.values() for c in ids})
    result: dict[int, list[Progress]] = {u.id: [] for u in units}
    for indicator in active_indicators():
        calculate = calculators.for_indicator(indicator)
        actuals = calculate(every, agreement.programme_id, period, units=counties) if calculate else {}
        for unit in units:
            actual = actuals.get(unit.id) if calculate else None
            result[unit.id].append(
                Progress(
                    indicator_id=indicator.id,
                    code=indicator.code,
                    name=indicator.name,
                    measure=indicator.measure,
                    unit=indicator.unit,
                    is_part=indicator.parent_id is not None,
                    target=targets[(agreement.id, unit.id)].values.get(indicator.id),
                    actual=None if actual is None else int(actual),
                    pending="" if calculate else calculators.PENDING.get(indicator.code, "暂无统计来源"),
                    summed_target=targets[(agreement.id, unit.id)].summed,
                )
            )
    return result


@dataclass(frozen=True)
class UnitTargets:
    """A unit's targets in one agreement: {indicator id: value}, and whether they are its counties' sum."""

    values: dict
    summed: bool = False


def unit_targets(agreement_ids, units: list[Unit], counties: dict[int, list[int]] | None = None) -> dict:
    """(agreement id, unit id) -> ``UnitTargets``: the one definition of a unit's 年度目标, read by the ranking, the
    home pages, the dashboard and the PDF.

    A county's targets are its own. A prefecture or the province with no target of its own in an agreement reports
    the sum of its counties' targets there (``summed``), so its 完成率 is its figures against that sum; a unit with
    any target of its own keeps its own (the province's demo targets are set, a prefecture's usually not).
    Two queries whatever the number of units.
    """
    agreement_ids = list(agreement_ids)
    counties = counties if counties is not None else counties_of(units)
    own: dict[tuple[int, int], dict[int, int]] = {}
    ids = [u.id for u in units]
    for agreement_id, unit_id, indicator_id, value in db.session.execute(
        sa.select(Target.agreement_id, Target.unit_id, Target.indicator_id, Target.value).where(
            Target.agreement_id.in_(agreement_ids), Target.unit_id.in_(ids)
        )
    ):
        own.setdefault((agreement_id, unit_id), {})[indicator_id] = value
    result = {}
    wanting = [u for u in units if u.kind is not UnitKind.COUNTY and any((a, u.id) not in own for a in agreement_ids)]
    sums: dict[tuple[int, int], dict[int, int]] = {}
    if wanting:
        every = sorted({c for u in wanting for c in counties.get(u.id, [])})
        rows = db.session.execute(
            sa.select(Target.agreement_id, Target.unit_id, Target.indicator_id, Target.value).where(
                Target.agreement_id.in_(agreement_ids), Target.unit_id.in_(every)
            )
        ).all()
        for u in wanting:
            mine = set(counties.get(u.id, []))
            for agreement_id, unit_id, indicator_id, value in rows:
                if unit_id in mine:
                    cell = sums.setdefault((agreement_id, u.id), {})
                    cell[indicator_id] = cell.get(indicator_id, 0) + value
    for agreement_id in agreement_ids:
        for u in units:
            key = (agreement_id, u.id)
            if key in own or u.kind is UnitKind.COUNTY:
                result[key] = UnitTargets(own.get(key, {}))
            else:
                result[key] = UnitTargets(sums.get(key, {}), summed=key in sums)
    return result


def active_indicators() -> list[Indicator]:
    return list(
        db.session.scalars(
            sa.select(Indicator).where(Indicator.is_active.is_(True)).order_by(Indicator.sort_order, Indicator.id)
        )
    )


def agreements_for(unit: Unit, year: int) -> list[Agreement]:
    """The year's agreements that concern ``unit``: those with a target for it, or whose programme pairs it."""
    with_targets = sa.select(Target.agreement_id).where(Target.unit_id == unit.id)
    # A county is concerned by its own pairings and its prefecture's; a prefecture by its own and its counties'.
    related = sa.or_(Unit.id == unit.id, Unit.id == unit.prefecture_id)
    if unit.kind is UnitKind.PREFECTURE:
        related = sa.or_(Unit.id == unit.id, Unit.prefecture_id == unit.id)
    paired = sa.select(Pairing.programme_id).where(
        Pairing.west_unit_id.in_(sa.select(Unit.id).where(related)),
        Pairing.valid_from <= date(year, 12, 31),
        sa.or_(Pairing.valid_to.is_(None), Pairing.valid_to >= date(year, 1, 1)),
    )
    condition = sa.or_(Agreement.id.in_(with_targets), Agreement.programme_id.in_(paired))
    if unit.kind is UnitKind.PROVINCE:
        condition = sa.true()
    return list(
        db.session.scalars(sa.select(Agreement).where(Agreement.year == year, condition).order_by(Agreement.id))
    )


# ---- agreements and targets -------------------------------------------------------------------------------------


def _check_agreement(data: dict, agreement_id: int | None = None):
    if db.session.get(Programme, data.get("programme_id") or 0) is None:
        raise ServiceError("请选择协作类型。", "programme_id")
    if not 2000 <= (data.get("year") or 0) <= 2100:
        raise ServiceError("年度应在 2000–2100 之间。", "year")
    clash = db.session.scalar(
        sa.select(Agreement.id).where(Agreement.programme_id == data["programme_id"], Agreement.year == data["year"])
    )
    if clash is not None and clash != agreement_id:
        raise ServiceError(f"该协作类型 {data['year']} 年的协议已经存在。", "year")


def create_agreement(data: dict, *, actor) -> Agreement:
    data = {k: data.get(k) for k in AGREEMENT_FIELDS}
    _check_agreement(data)
    agreement = Agreement(**data)
    agreement.note = agreement.note or ""
    db.session.add(agreement)
    db.session.flush()
    record(
        "create",
        agreement,
        actor=actor,
        summary=f"新建协议 {agreement.title}",
        changes=snapshot(agreement, AGREEMENT_FIELDS),
    )
    return agreement


def update_agreement(agreement: Agreement, data: dict, *, actor, version=None) -> dict:
    check_version(agreement, version)
    merged = {k: data.get(k, getattr(agreement, k)) for k in AGREEMENT_FIELDS}
    _check_agreement(merged, agreement.id)
    changes = apply_changes(agreement, merged, AGREEMENT_FIELDS)
    if changes:
        record("update", agreement, actor=actor, summary=f"修改协议 {agreement.title}", changes=changes)
    return changes


def target_unit_ok(unit: Unit | None) -> bool:
    return (
        unit is not None
        and unit.side is Side.WEST
        and unit.kind in (UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY)
    )


def set_targets(agreement: Agreement, unit: Unit, values: dict[int, int | None], *, actor, batch=None) -> dict:
    """Set the targets of ``unit`` in one agreement: {indicator_id: value or None to remove}. One audit event."""
    if not target_unit_ok(unit):
        raise ServiceError("目标只能分解到四川省、市(州)或县(市、区)。", "unit_id")
    current = {t.indicator_id: t for t in agreement.targets if t.unit_id == unit.id}
    indicators = {i.id: i for i in db.session.scalars(sa.select(Indicator).where(Indicator.id.in_(values.keys())))}
    changes = {}
    for indicator_id, value in values.items():
        indicator = indicators.get(indicator_id)
        if indicator is None:
            raise ServiceError("指标不存在。")
        if value is not None and value < 0:
            raise ServiceError(f"“{indicator.name}”的目标不能为负数。", f"t{indicator_id}")
        existing = current.get(indicator_id)
        old = existing.value if existing else None
        if old == value:
            continue
        if value is None:
            agreement.targets.remove(existing)
        elif existing:
            existing.value = value
        else:
            agreement.targets.append(Target(indicator_id=indicator_id, unit_id=unit.id, value=value))
        changes[indicator.name] = [old, value]
    if changes:
        written(
            "targets",
            agreement,
            actor=actor,
            summary=f"{agreement.title}：修改 {unit.full_name} 的目标",
            changes=changes,
            batch=batch,
        )
    return changes


def allocation_summary(agreement: Agreement, province: Unit) -> dict[int, tuple[int | None, int]]:
    """{indicator_id: (province target, sum of county allocations)} — to see what is left to allocate."""
    totals = dict.fromkeys((i.id for i in active_indicators()), 0)
    province_targets = {}
    for target in agreement.targets:
        if target.unit_id == province.id:
            province_targets[target.indicator_id] = target.value
        elif target.unit.kind is UnitKind.COUNTY:
            totals[target.indicator_id] = totals.get(target.indicator_id, 0) + target.value
    return {i: (province_targets.get(i), total) for i, total in totals.items()}


# ---- indicators and entries ---------------------------------------------------------------------------------------


def create_indicator(data: dict, *, actor) -> Indicator:
    data = {k: data.get(k) for k in INDICATOR_FIELDS}
    for key, label in (("code", "代码"), ("name", "名称")):
        if db.session.scalar(sa.select(Indicator.id).where(getattr(Indicator, key) == data[key])):
            raise ServiceError(f"已有{label}为“{data[key]}”的指标。", key)
    indicator = Indicator(**data, is_builtin=False)
    indicator.description = indicator.description or ""
    indicator.unit = indicator.unit or ""
    db.session.add(indicator)
    db.session.flush()
    record(
        "create",
        indicator,
        actor=actor,
        summary=f"新增指标 {indicator.name}",
        changes=snapshot(indicator, INDICATOR_FIELDS),
    )
    return indicator


def update_indicator(indicator: Indicator, data: dict, *, actor, version=None) -> dict:
    check_version(indicator, version)
    if indicator.is_builtin:
        # Code and measure of a built-in indicator tie it to its calculator.
        data = {k: v for k, v in data.items() if k not in ("code", "measure")}
    name_clash = db.session.scalar(sa.select(Indicator.id).where(Indicator.name == data.get("name", indicator.name)))
    if name_clash is not None and name_clash != indicator.id:
        raise ServiceError(f"已有名称为“{data['name']}”的指标。", "name")
    changes = apply_changes(indicator, data, INDICATOR_FIELDS)
    if changes:
        record("update", indicator, actor=actor, summary=f"修改指标 {indicator.name}", changes=changes)
    return changes


def _check_entry(data: dict):
    indicator = db.session.get(Indicator, data.get("indicator_id") or 0)
    if indicator is None or not calculators.takes_entries(indicator):
        raise ServiceError("该指标由业务记录自动统计，不能手工登记。", "indicator_id")
    county = db.session.get(Unit, data.get("county_id") or 0)
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择四川的县(市、区)。", "county_id")
    pairing = db.session.get(Pairing, data.get("pairing_id") or 0)
    if data.get("occurred_on") is None:
        raise ServiceError("请填写日期。", "occurred_on")

    if pairing is None or pairing.id not in {p.id for p in pairing_choices(county.id, data["occurred_on"])}:
        raise ServiceError(
            f"所选结对关系在 {data['occurred_on'].isoformat()} 不是{county.name}的有效结对。", "pairing_id"
        )
    if data.get("value") is None or data["value"] <= 0:
        raise ServiceError("数值须大于 0。", "value")
    return indicator


def create_entry(data: dict, *, actor, batch=None) -> IndicatorEntry:
    data = {k: data.get(k) for k in ENTRY_FIELDS}
    indicator = _check_entry(data)
    authorize_write(actor, IndicatorEntry, data)
    entry = IndicatorEntry(**{k: v if v is not None else "" for k, v in data.items()})
    db.session.add(entry)
    db.session.flush()
    written(
        "create",
        entry,
        actor=actor,
        summary=f"登记指标完成情况：{indicator.name}",
        changes=snapshot(entry, ENTRY_FIELDS),
        batch=batch,
    )
    return entry


def delete_entry(entry: IndicatorEntry, *, actor, version=None):
    check_version(entry, version)
    authorize_write(actor, IndicatorEntry, None, before=entry)
    record(
        "delete",
        entry,
        actor=actor,
        summary=f"删除指标完成记录：{entry.indicator.name}",
        changes=snapshot(entry, ENTRY_FIELDS),
    )
    db.session.delete(entry)
