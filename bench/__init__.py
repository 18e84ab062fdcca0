"""Benchmark scripts (speed targets are measured here, never in timed tests)."""


def fresh_app(url: str | None, name: str):
    """An app on ``url`` (a new SQLite file when None) whose schema is dropped and rebuilt by the migrations.

    Cheap password hashing: the scripts log in, and argon2's production cost would be timed with the page.
    """
    import tempfile
    from pathlib import Path

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from registry import create_app
    from registry.extensions import db

    url = url or f"sqlite:///{Path(tempfile.mkdtemp()) / f'{name}.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SERVER_NAME": None, "ARGON2_MEMORY_COST": 1024, "ARGON2_TIME_COST": 1,
                      "ARGON2_PARALLELISM": 1})  # fmt: skip
    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        meta.drop_all(bind=db.engine)
        upgrade()
    return app
