"""Benchmark: memory of the placements export (CSV and XLSX) at 10,000 and 100,000 rows.

Usage:
    .venv/bin/python -m bench.export_placements [--rows 10000 100000] [--database-url postgresql+psycopg://…/db]
        [--in-process] [--smoke]

For each size, a database (a new SQLite file unless a PostgreSQL URL is given, whose database is EMPTIED) is
loaded by the registry's import with a workbook of that many placements (bench.import_placements.make_workbook);
then, each in a fresh process, the export the list page sends (``stream_csv`` / ``stream_xlsx`` over
``export_rows`` of the province office's whole list) is produced and read to the end, and the process's peak
memory (ru_maxrss) and the time are printed. Streamed, the peak stays about the same whatever the row count.

Measured on the quiet 2-core machine (``env -u DATABASE_URL .venv/bin/python -m bench.export_placements --rows
100000`` and ``--rows 10000``, SQLite, minutes apart):
    10000 rows csv: 0.4 s, 1.7 MB file, peak 125 MB (the app alone 111 MB)
    10000 rows xlsx: 1.9 s, 0.9 MB file, peak 136 MB (the app alone 111 MB)
    100000 rows csv: 4.5 s, 16.9 MB file, peak 126 MB (the app alone 111 MB)
    100000 rows xlsx: 21.1 s, 8.4 MB file, peak 136 MB (the app alone 111 MB)
PostgreSQL 15 (``--database-url-prefix postgresql+psycopg://postgres@127.0.0.1:5432/bench_import``, 2026-11-30):
    10000 rows csv: 0.5 s, peak 126 MB; xlsx: 2.4 s, peak 137 MB (the app alone 112-113 MB)
    100000 rows csv: 4.3 s, peak 127 MB; xlsx: 21.8 s, peak 137 MB (the app alone 112 MB)
Ten times the rows, the same peak: the rows are read 2,000 at a time (``database.keyset_batches``) and written
to a temporary file as they come. Purchases and people exchanged export the same way.
``--database-url-prefix`` is the old name of ``--database-url``. ``--in-process`` runs every step in this process
(the peak is then this process's); ``--smoke``: 200 rows, in-process (seconds, figures not targets).
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import figure, parse_args


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(url: str, rows: int) -> tuple:
    from bench.import_placements import make_workbook, registry_import
    from bench.import_placements import setup as fresh_database

    path = Path(tempfile.mkdtemp()) / "placements.xlsx"
    make_workbook(path, rows)
    fresh_database(url)
    registry_import(str(path), url)
    return ()


def export(url: str, kind: str) -> tuple:
    """The export view's body for the province office's whole list, read to the end: (seconds, bytes, peak MB,
    peak MB before the export)."""
    import sqlalchemy as sa

    from registry import create_app
    from registry.auth.models import User
    from registry.kernel.exports import stream_csv, stream_xlsx
    from registry.kernel.extensions import db
    from registry.placements import queries
    from registry.placements.transfer import HEADERS, export_rows

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "SERVER_NAME": None})
    with app.test_request_context():
        user = db.session.scalar(sa.select(User).where(User.username == "bench"))
        before = _peak_mb()
        started = time.perf_counter()
        rows = export_rows(queries.filtered({k: "" for k in queries.FILTER_KEYS}, user), reveal=False)
        if kind == "csv":
            response = stream_csv(HEADERS, rows, "bench")
        else:
            response = stream_xlsx(HEADERS, rows, "bench", title="劳务协作")
        size = sum(len(chunk) for chunk in response.response)
        response.close()
        elapsed = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return round(elapsed, 3), size, round(_peak_mb()), round(before)


def step(args: list[str], in_process: bool, function, *params) -> list[float]:
    if in_process:
        return [float(x) for x in function(*params)]
    command = [sys.executable, "-m", "bench.export_placements", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()  # noqa: S603
    return [float(x) for x in out]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--database-url", "--database-url-prefix", dest="database_url",
                        help="a database to EMPTY and use for each size (default: a new SQLite file each)")  # fmt: skip
    parser.add_argument("--step", choices=["setup", "export"])
    parser.add_argument("--kind", choices=["csv", "xlsx"])
    parser.add_argument("--in-process", action="store_true", help="every step in this process (smoke runs)")
    args = parse_args(parser, {"rows": [200], "in_process": True}, argv)
    if args.step == "setup":
        return print(" ".join(map(str, setup(args.database_url, args.rows[0]))))
    if args.step == "export":
        return print(" ".join(map(str, export(args.database_url, args.kind))))
    for rows in args.rows:
        url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'export.sqlite3'}"
        step(["--step", "setup", "--database-url", url, "--rows", str(rows)], args.in_process, setup, url, rows)
        for kind in ("csv", "xlsx"):
            seconds, size, peak, app_peak = step(["--step", "export", "--database-url", url, "--kind", kind],
                                                 args.in_process, export, url, kind)  # fmt: skip
            figure(f"export_placements.{kind}_{rows}_peak", round(peak), "MB",
                   note=f"{rows} rows {kind}: {seconds:.1f} s, {size / 1e6:.1f} MB file; the app alone {app_peak:.0f} "
                        f"MB{' (in this process)' if args.in_process else ''}")  # fmt: skip
            figure(f"export_placements.{kind}_{rows}_time", seconds, "s")


if __name__ == "__main__":
    main()
