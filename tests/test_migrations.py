"""The schema comes only from migrations: upgrading an empty database yields exactly what the models describe."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from registry import create_app
from registry.kernel import search
from registry.kernel.extensions import db
from tests.conftest import make_test_config


def test_upgrade_builds_exactly_the_models_schema(empty_database, tmp_path):
    app = create_app(make_test_config(empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            # The keyword indexes (kernel/search.py) are engine-specific and not models: an FTS5 table on SQLite,
            # a GIN expression index on PostgreSQL.
            opts = {"compare_type": True, "include_name": lambda name, kind, _parents: not search.is_index_name(name)}
            context = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
