"""PostgreSQL: the statistics refresh after an import is a VACUUM (ANALYZE), so rows just written are marked visible
to every transaction and index-only scans (a list's deep page, its counts) do not read the table for each of them."""

import pytest
import sqlalchemy as sa

from registry.kernel import database
from registry.kernel.extensions import db


def test_the_refresh_vacuums_the_written_tables_on_postgresql(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("PostgreSQL's visibility map")
    with app.app_context():
        database.refresh_statistics(db.engine, ["placements", "purchases"])
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            rows = conn.execute(
                sa.text("SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables "
                        "WHERE schemaname = current_schema() AND relname IN ('placements', 'purchases')")
            ).all()  # fmt: skip
        assert {name for name, vacuumed, analysed in rows if vacuumed and analysed} == {"placements", "purchases"}
        # The connection went back to the pool as it came: in transactions again.
        with db.engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False
