"""The purchases module's figures: the 消费帮扶金额 indicator and the report's amounts by channel and county.

Arguments as in ``registry.projects.figures``: county ids (of the sellers), a period and ``pairings``.
"""

from datetime import date

import sqlalchemy as sa

from registry.kernel.database import among, per_unit
from registry.kernel.extensions import db
from registry.kernel.periods import Period
from registry.pairings.models import Pairing
from registry.purchases.models import Channel, CountingType, Purchase


def consumption(counties, programme_id, period, pairings=None, *, units=None):
    """消费帮扶金额: purchases and helped sales of the counties' sellers in the period (each evidence once);
    {unit id: amount} with ``units`` (as in ``projects.figures.fiscal_funds``)."""
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(Purchase.amount_fen), 0))
        .join(Pairing, Pairing.id == Purchase.pairing_id)
        .where(
            Purchase.seller_county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Purchase.pairing_id, pairings),
            Purchase.purchased_on.between(period.start, period.end),
        )
    )
    return db.session.scalar(stmt) if units is None else per_unit(db.session, stmt, Purchase.seller_county_id, units)


def by_channel(counties, pairings, period: Period, *, recent_from: date) -> list[tuple]:
    """Per channel (in its order) and counting type: channel name, type, records, amount dated from
    ``recent_from`` (the quarter), amount in the whole period (the year to date).

    Summed over the purchases alone, then joined to the few channels: joined first, SQLite walked the purchases
    in channel order (ix_purchases_channel_totals) instead of the county and date range (0.75 s for a province's
    year at 202,000 purchases)."""
    sums = (
        sa.select(
            Purchase.channel_id.label("channel_id"),
            Purchase.counting_type.label("counting_type"),
            sa.func.count(Purchase.id).label("records"),
            sa.func.sum(sa.case((Purchase.purchased_on >= recent_from, Purchase.amount_fen), else_=0)).label("recent"),
            sa.func.sum(Purchase.amount_fen).label("total"),
        )
        .where(
            Purchase.seller_county_id.in_(counties),
            among(Purchase.pairing_id, pairings),
            Purchase.purchased_on.between(period.start, period.end),
        )
        .group_by(Purchase.channel_id, Purchase.counting_type)
        .subquery()
    )
    stmt = (
        sa.select(Channel.name, sums.c.counting_type, sums.c.records, sums.c.recent, sums.c.total)
        .join(sums, sums.c.channel_id == Channel.id)
        .order_by(Channel.sort_order, Channel.id, sums.c.counting_type)
    )
    rows = db.session.execute(stmt)
    return [(name, CountingType(kind), int(n), int(q or 0), int(y or 0)) for name, kind, n, q, y in rows]


def amount_by_county(ids, pairings, period: Period) -> dict[int, int]:
    """Seller county id -> amount purchased in the period."""
    return {
        county_id: int(amount or 0)
        for county_id, amount in db.session.execute(
            sa.select(Purchase.seller_county_id, sa.func.sum(Purchase.amount_fen))
            .where(
                Purchase.seller_county_id.in_(ids),
                among(Purchase.pairing_id, pairings),
                Purchase.purchased_on.between(period.start, period.end),
            )
            .group_by(Purchase.seller_county_id)
        )
    }
