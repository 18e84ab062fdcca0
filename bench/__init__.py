"""Benchmark scripts (speed targets are measured here, never in timed tests).

Every script:
- prints its results through ``figure``: one line per figure, ``FIGURE <name> value=<v><unit> [target=<t>]
  [baseline=<b>]  # <note>``, which people read and ``bench.smoke`` (and anyone) parses with ``parse_figure``;
- takes ``--smoke``: a small size that runs in seconds (its size arguments still override it), so that
  ``python -m bench.smoke`` runs every bench on every CI run (never asserting on a timing);
- builds its database with ``fresh_app`` (a migrated empty schema) or ``demo_app`` (the demo data loaded). When
  ``bench.smoke`` runs them it first builds each of these once per engine and names them in ``BENCH_MIGRATED_TEMPLATE``
  and ``BENCH_DEMO_TEMPLATE``; the functions then copy the template (a file copy on SQLite, ``CREATE DATABASE …
  TEMPLATE`` on PostgreSQL) instead of running the migrations or loading the demo again.
"""

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path

#: Environment variables naming template databases (set by bench.smoke): a migrated empty schema, and the same with
#: the smoke-size demo loaded.
MIGRATED_TEMPLATE = "BENCH_MIGRATED_TEMPLATE"
DEMO_TEMPLATE = "BENCH_DEMO_TEMPLATE"

#: Settings of every bench app. Cheap password hashing: the scripts log in, and argon2's production cost would be
#: timed with the page.
BENCH_CONFIG = {"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False, "SERVER_NAME": None, "ARGON2_MEMORY_COST": 1024,
                "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1}  # fmt: skip


# ---- figure lines ----------------------------------------------------------------------------------------------

FIGURE = "FIGURE"
_FIGURE_LINE = re.compile(r"^FIGURE (?P<name>\S+) value=(?P<value>-?[0-9][0-9.eE+-]*)(?P<unit>\S*)(?P<rest>.*)$")


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a figure's value is a number, not {value!r}")
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _word(text) -> str:
    """A token without spaces (what a key=value of the line may hold)."""
    return re.sub(r"\s+", "", str(text))


def figure(name: str, value, unit: str = "", target=None, baseline=None, note: str = "") -> str:
    """Print (and return) one figure line: ``FIGURE <name> value=<value><unit> target=<target> baseline=<baseline>``.

    ``name`` is ``<bench>.<what>`` without spaces; ``value`` a number; ``unit`` e.g. ``s``, ``ms``, ``MB``, ``x``,
    ``req/s``; ``target`` the goal as text (``<2s``, ``≤1.1x``); ``baseline`` what the value is compared with: a
    number in the same unit, or a text (``weasyprint_alone``); ``note`` free text after ``#`` for people.
    """
    if not re.fullmatch(r"[\w.\-/]+", name):
        raise ValueError(f"a figure's name is one word: {name!r}")
    parts = [FIGURE, name, f"value={_number(value)}{_word(unit)}"]
    if target is not None:
        parts.append(f"target={_word(target)}")
    if baseline is not None:
        shown = f"{_number(baseline)}{_word(unit)}" if isinstance(baseline, int | float) else _word(baseline)
        parts.append(f"baseline={shown}")
    line = " ".join(parts) + (f"  # {note}" if note else "")
    print(line, flush=True)
    return line


def parse_figure(line: str) -> dict | None:
    """The fields of a figure line (name, value, unit, target, baseline, note), or None for any other line."""
    match = _FIGURE_LINE.match(line.rstrip("\n"))
    if not match:
        return None
    rest, _, note = match["rest"].partition("#")
    fields = dict(item.split("=", 1) for item in rest.split() if "=" in item)
    try:
        value = float(match["value"])
    except ValueError:
        return None
    return {"name": match["name"], "value": value, "unit": match["unit"], "target": fields.get("target"),
            "baseline": fields.get("baseline"), "note": note.strip()}  # fmt: skip


# ---- arguments -------------------------------------------------------------------------------------------------


def parse_args(parser: argparse.ArgumentParser, smoke: dict, argv=None) -> argparse.Namespace:
    """Add ``--smoke`` to ``parser`` and parse: with it, ``smoke`` gives the size arguments' defaults (arguments
    given on the command line still win)."""
    parser.add_argument("--smoke", action="store_true", help=f"a small size that runs in seconds: {smoke}")
    first, _ = parser.parse_known_args(argv)
    if first.smoke:
        parser.set_defaults(**smoke)
    return parser.parse_args(argv)


# ---- databases -------------------------------------------------------------------------------------------------


def _dialect(url: str | None) -> str:
    return "sqlite" if not url or url.startswith("sqlite") else "postgresql"


def copy_database(template: str, url: str | None, name: str) -> str:
    """A new database ``url`` (a new SQLite file when None) holding a copy of ``template``; returns its URL.

    On PostgreSQL ``url``'s database is dropped (WITH FORCE) and created again from the template, through the
    server's ``postgres`` database."""
    import sqlalchemy as sa

    if _dialect(url) == "sqlite":
        path = Path(sa.engine.make_url(url).database) if url else Path(tempfile.mkdtemp()) / f"{name}.sqlite3"
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(sa.engine.make_url(template).database, path)
        return f"sqlite:///{path}"
    target, source = sa.engine.make_url(url), sa.engine.make_url(template).database
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}" TEMPLATE "{source}"')
    finally:
        admin.dispose()
    return url


def _template(variable: str, url: str | None) -> str | None:
    """The template named in ``variable`` when it is of ``url``'s engine."""
    template = os.environ.get(variable)
    return template if template and _dialect(template) == _dialect(url) else None


def bench_app(url: str):
    from registry import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, **BENCH_CONFIG})


def fresh_app(url: str | None, name: str):
    """An app on ``url`` (a new SQLite file when None) whose schema is dropped and rebuilt by the migrations (or
    copied from ``BENCH_MIGRATED_TEMPLATE``, a database so built)."""
    template = _template(MIGRATED_TEMPLATE, url)
    if template:
        return bench_app(copy_database(template, url, name))
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from registry.kernel.extensions import db

    url = url or f"sqlite:///{Path(tempfile.mkdtemp()) / f'{name}.sqlite3'}"
    app = bench_app(url)
    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        meta.drop_all(bind=db.engine)
        upgrade()
    return app


def load_demo(smoke: bool) -> None:
    """Load the demo data into the app context's database and commit (planner statistics gathered on PostgreSQL).

    The whole demo (``flask demo load``) takes most of a minute; ``smoke`` loads its divisions, programmes,
    pairings, accounts, projects with their money, placements and purchases only (no narratives, problems,
    notices or assets) — what the benches' pages and reports read — in a few seconds.
    """
    from registry import demo
    from registry.counties.services import DATA_DIR, load_divisions
    from registry.demo import records as demo_projects
    from registry.kernel.database import refresh_planner_statistics, reset_id_sequences, writing
    from registry.kernel.extensions import db

    with writing():
        load_divisions(DATA_DIR)
        if smoke:
            programmes = demo._programmes()
            demo._documented_pairings(programmes)
            demo._organisations(programmes)
            demo._users()
            db.session.flush()
            demo_projects.load()
            demo_projects.load_records()
            reset_id_sequences(db.session)
        else:
            demo.load()
        db.session.commit()
        refresh_planner_statistics(db.session)


def demo_app(url: str | None, name: str, *, smoke: bool = False):
    """An app on a fresh database (``url``, else a new SQLite file) holding the demo data (the smoke-size part of
    it with ``smoke``, copied from ``BENCH_DEMO_TEMPLATE`` when that names one)."""
    template = _template(DEMO_TEMPLATE, url) if smoke else None
    if template:
        return bench_app(copy_database(template, url, name))
    app = fresh_app(url, name)
    with app.app_context():
        load_demo(smoke)
    return app


def dispose(app) -> None:
    """Close the app's connections (before its database is copied, or dropped)."""
    from registry.kernel.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
