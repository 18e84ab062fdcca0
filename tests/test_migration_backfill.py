"""Migration b7d1c0a4e2f9 backfills people, person ids, placement cells and purchase totals from existing rows:
after it, the derived tables hold exactly what the services would have built."""

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from registry import create_app
from registry.kernel.extensions import db
from tests.conftest import make_test_config
from tests.factories import World
from tests.test_placement_cells import assert_cells_consistent, populate
from tests.test_purchase_totals import assert_totals_consistent, totals_from_purchases
from tests.test_purchase_totals import populate as populate_purchases


def test_the_migration_backfills_the_derived_tables(empty_database):
    app = create_app(make_test_config(empty_database))
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
