"""Create and change placements, reveal identity numbers (audited), find people placed by two counties."""

from datetime import date

import sqlalchemy as sa

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel import idnumbers
from registry.kernel.audit.services import apply_changes, json_value, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, check_version, insert_unique
from registry.kernel.transfer import Batch, written
from registry.kernel.transfer import cache_of as _cache
from registry.pairings.services import county_pairing_id
from registry.permissions import authorize_write
from registry.placements.cells import person_id_for, person_ids_for, refresh_cells, refresh_cells_only, slice_of
from registry.placements.models import Placement
from registry.placements.months import ranges_of, refresh_ranges, spanned

FIELDS = (
    "person_name", "household", "origin_county_id", "origin_township", "destination_class", "destination_province",
    "destination_city", "employer", "industry", "organised", "training", "start_date", "end_date",
    "monthly_wage_fen", "note",
)  # fmt: skip
#: What the audit trail keeps of a placement: the masked number, never the number.
AUDITED = (*FIELDS, "id_masked", "pairing_id")
TEXT_FIELDS = (
    "origin_township",
    "destination_province",
    "destination_city",
    "employer",
    "industry",
    "training",
    "note",
)


def _is_west_county(county_id, batch: Batch | None = None) -> bool:
    """Is this the id of a Sichuan county? (An import asks once per county, not once per row.)"""
    known = batch.cache.setdefault("west_counties", {}) if batch is not None else {}
    if county_id not in known:
        county = db.session.get(Unit, county_id or 0)
        known[county_id] = county is not None and county.kind is UnitKind.COUNTY and county.side is Side.WEST
    return known[county_id]


def _check(data: dict, batch: Batch | None = None) -> None:
    if not _is_west_county(data.get("origin_county_id"), batch):
        raise ServiceError("请选择户籍所在的四川县(市、区)。", "origin_county_id")
    if not data.get("person_name"):
        raise ServiceError("请填写姓名。", "person_name")
    if data.get("household") is None:
        raise ServiceError("请选择户类型。", "household")
    if data.get("destination_class") is None:
        raise ServiceError("请选择就业去向。", "destination_class")
    if data.get("start_date") is None:
        raise ServiceError("请填写就业开始日期。", "start_date")
    if data["start_date"] > date.today():
        raise ServiceError("就业开始日期不能晚于今天。", "start_date")
    if data.get("end_date") and data["end_date"] < data["start_date"]:
        raise ServiceError("就业结束日期早于开始日期。", "end_date")
    if data.get("monthly_wage_fen") is not None and data["monthly_wage_fen"] < 0:
        raise ServiceError("月工资不能为负数。", "monthly_wage_fen")


def _identity(text, batch: Batch | None = None) -> dict:
    """The stored forms of an identity number (typed text, or an ``IdNumber`` an importer already parsed)."""
    if isinstance(text, idnumbers.IdNumber):
        person = text
    else:
        try:
            person = idnumbers.parse(text)
        except idnumbers.IdNumberError as exc:
            raise ServiceError(str(exc), "id_number") from exc
    if batch is None:
        fingerprint, stored = idnumbers.fingerprint(person.number), idnumbers.protect(person.number)
    else:
        # An import derives the fingerprint key and builds the cipher once, not once per row.
        if "protect" not in batch.cache:
            batch.cache["protect"] = idnumbers.protector()
            batch.cache["fingerprint_key"] = idnumbers.fingerprint_key()
        fingerprint = batch.cache.get("fingerprints", {}).get(person.number) or idnumbers.keyed_fingerprint(
            batch.cache["fingerprint_key"], person.number
        )
        stored = batch.cache["protect"](person.number)
    people = batch.cache.get("people") if batch is not None else None
    return {
        "id_stored": stored,
        "id_fingerprint": fingerprint,
        "person_id": people[fingerprint] if people and fingerprint in people else person_id_for(fingerprint),
        "id_masked": person.masked,
        "sex": person.sex,
        "birth_date": person.birth_date,
    }


def _json(value):
    """``json_value`` with the plain values (most of a row) passed straight through."""
    return value if value is None or type(value) in (str, int, bool) else json_value(value)


def _normalise(data: dict) -> dict:
    for key in TEXT_FIELDS:
        data[key] = data.get(key) or ""
    data["organised"] = bool(data.get("organised"))
    return data


#: The refusal of a second record of the same person, origin county and start date (the table's unique key).
DUPLICATE = "该人员在此户籍县、此就业开始日期的记录已被登记：同一人的同一次就业只登记一条，请修改原记录。"


def _refuse_duplicate(fingerprint: str, county_id: int, start: date, placement_id: int | None = None) -> None:
    """A form may not add a second record for one placement (an import matches it instead, see transfer)."""
    clash = sa.select(Placement.id).where(
        Placement.id_fingerprint == fingerprint,
        Placement.origin_county_id == county_id,
        Placement.start_date == start,
    )
    if placement_id is not None:
        clash = clash.where(Placement.id != placement_id)
    if db.session.scalar(clash.limit(1)) is not None:
        raise ServiceError(DUPLICATE, "start_date")


def prepare_import(batch: Batch, fingerprints: dict[str, str]) -> None:
    """Load once for a chunk of an import what its rows need: ``fingerprints`` ({number: fingerprint}, which the
    importer computed to match the rows, so they are not computed twice) and the people ids of those."""
    batch.cache["fingerprints"] = fingerprints
    batch.cache["people"] = person_ids_for(fingerprints.values())


def create_placement(data: dict, *, actor, batch: Batch | None = None) -> Placement | None:
    """Register a placement; the write gate checks the county and the pairing the start date puts it in.

    In an import (``batch``) the checked row goes to ``Batch.insert`` and is written with many others: no
    instance is returned, and the duplicate key was already matched by the importer (the database's unique key
    still refuses a record another user registered meanwhile).
    """
    fields = _normalise({k: data.get(k) for k in FIELDS})
    _check(fields, batch)
    identity = _identity(data.get("id_number", ""), batch)
    fields["pairing_id"] = county_pairing_id(fields["origin_county_id"], fields["start_date"], _cache(batch))
    authorize_write(actor, Placement, fields, cache=_cache(batch))
    summary = f"登记劳务协作 {fields['person_name']}（{identity['id_masked']}）"
    if batch is not None:
        values = fields | identity
        changes = {k: _json(values[k]) for k in AUDITED}
        batch.insert(Placement, values, summary=summary, changes=changes)
        batch.touch(refresh_cells_only, [(fields["origin_county_id"], fields["start_date"].year)])
        batch.touch(refresh_ranges, ranges_of([spanned(values)]))
        return None
    _refuse_duplicate(identity["id_fingerprint"], fields["origin_county_id"], fields["start_date"])
    placement = Placement(**fields, **identity)
    insert_unique(placement, DUPLICATE, "start_date")  # registered by another request since the check above
    refresh_cells([slice_of(placement)], months=[spanned(placement)])
    written("create", placement, actor=actor, changes=snapshot(placement, AUDITED), summary=summary)
    return placement


def update_placement(placement: Placement, data: dict, *, actor, version=None, batch: Batch | None = None) -> dict:
    """Change a placement; a blank identity number keeps the stored one. The gate checks the record as it was and
    as it will be, so nobody moves a record into or out of their scope."""
    check_version(placement, version)
    merged = _normalise({k: data.get(k, getattr(placement, k)) for k in FIELDS})
    _check(merged, batch)
    if data.get("id_number"):
        identity = _identity(data["id_number"], batch)
        if identity["id_fingerprint"] != placement.id_fingerprint:
            merged.update(identity)
    merged["pairing_id"] = county_pairing_id(merged["origin_county_id"], merged["start_date"], _cache(batch))
    authorize_write(actor, Placement, merged, before=placement, cache=_cache(batch))
    fingerprint = merged.get("id_fingerprint", placement.id_fingerprint)
    key = (fingerprint, merged["origin_county_id"], merged["start_date"])
    if batch is None and key != (placement.id_fingerprint, placement.origin_county_id, placement.start_date):
        _refuse_duplicate(*key, placement_id=placement.id)
    before, was = slice_of(placement), spanned(placement)
    changes = apply_changes(placement, merged, (*FIELDS, "id_stored", "id_fingerprint", "person_id", "id_masked",
                                                "sex", "birth_date", "pairing_id"))  # fmt: skip
    for secret in ("id_stored", "id_fingerprint", "person_id"):
        changes.pop(secret, None)  # never in the audit trail, even encrypted
    # The placement may have left its cell (another county, year, household…): rebuild where it was and is; the
    # monthly rows only in the months it spanned before and spans now.
    if batch is None:
        refresh_cells({before, slice_of(placement)}, months=[was, spanned(placement)])
    elif changes:
        batch.touch(refresh_cells_only, {before, slice_of(placement)})
        batch.touch(refresh_ranges, ranges_of([was, spanned(placement)]))
    if changes:
        written("update", placement, actor=actor, batch=batch, summary=f"修改劳务协作 {placement.person_name}",
                changes=changes)  # fmt: skip
    return changes


def reveal_number(placement: Placement, *, actor) -> str:
    """The full identity number, for a permitted role; the view itself is an audited event."""
    number = idnumbers.reveal(placement.id_stored)
    record("view_id", placement, actor=actor, summary=f"查看 {placement.person_name} 的完整身份证号")
    return number


def possible_duplicates(where=None):
    """People (by identity fingerprint) with placements from more than one origin county, for staff to resolve."""
    where = sa.true() if where is None else where
    counties = sa.func.count(sa.distinct(Placement.origin_county_id))
    fingerprints = (
        sa.select(Placement.id_fingerprint).where(where).group_by(Placement.id_fingerprint).having(counties > 1)
    )
    return (
        sa.select(Placement)
        .where(Placement.id_fingerprint.in_(fingerprints), where)
        .order_by(Placement.id_fingerprint, Placement.start_date)
    )
