"""Reading purchases: the list's filters, shared by the list, its totals and the export."""

from datetime import date

import sqlalchemy as sa

from registry.counties.models import Unit
from registry.kernel import exports, search
from registry.kernel.extensions import db
from registry.kernel.web import is_id, is_year
from registry.permissions import scope_filter
from registry.purchases.models import (
    BuyerKind,
    Channel,
    CountingType,
    ProductCategory,
    Purchase,
    PurchaseTotals,
    SellerKind,
)


def _by_columns(args: dict, table) -> list:
    """WHERE clauses of the filters Purchase and PurchaseTotals share by column name, so the list and its totals
    cannot select different records."""
    where = []
    if is_id(args.get("county")):
        where.append(table.seller_county_id == int(args["county"]))
    if is_id(args.get("channel")):
        where.append(table.channel_id == int(args["channel"]))
    if args.get("counting_type") in CountingType._value2member_map_:
        where.append(table.counting_type == args["counting_type"])
    if args.get("category") in ProductCategory._value2member_map_:
        where.append(table.product_category == args["category"])
    return where


def filtered(args: dict, user) -> sa.Select:
    """The purchase SELECT of the list and its export: scope first, then the filters."""
    stmt = sa.select(Purchase).where(scope_filter(user, Purchase), *_by_columns(args, Purchase))
    if args.get("q"):
        # Sellers, buyers, products and evidence numbers, through the keyword index (registry/kernel/search.py).
        stmt = stmt.where(search.keyword(Purchase, args["q"]))
    if is_year(args.get("year")):
        year = int(args["year"])
        stmt = stmt.where(Purchase.purchased_on.between(date(year, 1, 1), date(year, 12, 31)))
    return stmt


def totals_filter(args: dict, user) -> list:
    """The WHERE clauses on PurchaseTotals selecting the rows of exactly the purchases ``filtered(args)`` lists
    (every filter but the keyword, which the totals cannot answer)."""
    where = [scope_filter(user, PurchaseTotals), *_by_columns(args, PurchaseTotals)]
    if is_year(args.get("year")):
        where.append(PurchaseTotals.year == int(args["year"]))
    return where


def sums(args: dict, stmt: sa.Select, user) -> tuple[int, int, list]:
    """(count, amount, [(channel name, counting type, amount)]) of the listed purchases, in one grouped query:
    from ``PurchaseTotals``, or from the purchases themselves for a keyword search (sellers, buyers, products and
    evidence numbers are not in the totals)."""
    if args.get("q"):
        rows = db.session.execute(
            stmt.with_only_columns(Purchase.channel_id, Purchase.counting_type, sa.func.count(Purchase.id),
                                   sa.func.sum(Purchase.amount_fen))
            .group_by(Purchase.channel_id, Purchase.counting_type)
            .order_by(None)
        ).all()  # fmt: skip
    else:
        rows = db.session.execute(
            sa.select(PurchaseTotals.channel_id, PurchaseTotals.counting_type, sa.func.sum(PurchaseTotals.purchases),
                      sa.func.sum(PurchaseTotals.amount_fen))
            .where(*totals_filter(args, user))
            .group_by(PurchaseTotals.channel_id, PurchaseTotals.counting_type)
        ).all()  # fmt: skip
    count, total = sum(int(row[2]) for row in rows), sum(int(row[3]) for row in rows)
    names = dict(db.session.execute(sa.select(Channel.id, Channel.name)).all())
    by_channel = sorted(((names[c], CountingType(kind), int(amount)) for c, kind, _, amount in rows),
                        key=lambda row: (row[0], row[1]))  # fmt: skip
    return count, total, by_channel


def channels() -> list:
    return db.session.scalars(sa.select(Channel).order_by(Channel.sort_order, Channel.id)).all()


def _labels(enum) -> dict:
    return {m.value: m.label for m in enum}


def export_batches(stmt: sa.Select, kind: str):
    """The export's rows (``transfer.HEADERS``) of ``stmt``'s purchases in date order, in finished batches for
    ``exports.write_table``: plain column tuples, per-column converters chosen once (see the placements')."""
    day, raw = exports.date_cell(kind, db.engine.dialect.name), sa.String
    n, s = exports.neutralise, exports.SUSPECT  # typed text: neutralised only when its first character is suspect
    columns = (
        sa.type_coerce(Purchase.purchased_on, raw), Purchase.id, Purchase.buyer_name,
        sa.type_coerce(Purchase.buyer_kind, raw), Purchase.buyer_province, Purchase.buyer_city, Purchase.seller_name,
        sa.type_coerce(Purchase.seller_kind, raw), Purchase.seller_county_id, Purchase.product,
        sa.type_coerce(Purchase.product_category, raw), Purchase.amount_fen, Purchase.channel_id,
        sa.type_coerce(Purchase.counting_type, raw), Purchase.evidence_no, Purchase.note,
    )  # fmt: skip
    buyers, sellers = _labels(BuyerKind), _labels(SellerKind)
    categories, counting = _labels(ProductCategory), _labels(CountingType)
    counties = {u.id: (u.code, u.name) for u in db.session.execute(sa.select(Unit.id, Unit.code, Unit.name))}
    names = {c.id: exports.text_cell(c.name) for c in db.session.execute(sa.select(Channel.id, Channel.name))}
    order = (sa.type_coerce(Purchase.purchased_on, raw), Purchase.id)
    yuan = exports.plain_yuan
    selected = stmt.with_only_columns(*columns)
    for batch in exports.keyset_rows(db.session, selected, order, lambda r: (r[0], r[1])):
        rows = []
        for (on, _, buyer, buyer_kind, province, city, seller, seller_kind, county, product, category, fen, channel,
             counted, evidence, note) in batch:  # fmt: skip
            code, county_name = counties[county]
            rows.append((
                day(on), n(buyer) if buyer and buyer[0] in s else buyer, buyers[buyer_kind],
                n(province) if province and province[0] in s else province, n(city) if city and city[0] in s else city,
                n(seller) if seller and seller[0] in s else seller, sellers[seller_kind], code, county_name,
                n(product) if product and product[0] in s else product, categories[category], yuan(fen),
                names[channel], counting[counted], n(evidence) if evidence and evidence[0] in s else evidence,
                n(note) if note and note[0] in s else note,
            ))  # fmt: skip
        yield rows
