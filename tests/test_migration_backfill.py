"""Migration b7d1c0a4e2f9 backfills people, person ids, placement cells and purchase totals from existing rows:
after it, the derived tables hold exactly what the services would have built."""

import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from registry import create_app
from registry.extensions import db
from tests.conftest import TEST_DATABASE_URL, make_test_config
from tests.factories import World
from tests.test_placement_cells import assert_cells_consistent, populate
from tests.test_purchase_totals import assert_totals_consistent, totals_from_purchases
from tests.test_purchase_totals import populate as populate_purchases


@pytest.fixture
def scratch_database(tmp_path):
    """A database of its own (the migration is run down and up on it)."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'backfill.sqlite3'}"
        return
    name = f"registry_backfill_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_the_migration_backfills_the_derived_tables(scratch_database):
    app = create_app(make_test_config(scratch_database))
    with app.app_context():
        upgrade()
        w = World()
        populate(w, n=60)
        populate_purchases(w, n=40)
        db.session.commit()
        expected_totals = totals_from_purchases()
        db.session.remove()
        downgrade(revision="aefc993e3d73")  # placements lose person_id; people, cells and totals are dropped
        assert "people" not in sa.inspect(db.engine).get_table_names()
        upgrade(revision="b7d1c0a4e2f9")
        assert_cells_consistent()
        assert_totals_consistent()
        assert totals_from_purchases() == expected_totals and len(expected_totals) > 20
        db.session.remove()
        db.engine.dispose()
