"""Transaction-scoped locks that serialise concurrent rebuilds of derived rows (PostgreSQL advisory locks)."""

from collections.abc import Iterable

import sqlalchemy as sa

from registry.kernel.extensions import db


def lock_counties(namespace: int, county_ids: Iterable[int]) -> None:
    """Serialise rebuilds of derived rows of the same counties across concurrent transactions (PostgreSQL).

    Without it, two transactions under READ COMMITTED could each delete a slice and insert their own rebuild,
    neither seeing the other's new record: both sets would stay, counted twice. The lock is held to the end of
    the transaction, and taken in county order so two rebuilds never wait on each other in a circle. SQLite
    needs nothing: it lets one writer at a time.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for county_id in sorted(set(county_ids)):
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(namespace, county_id)))
