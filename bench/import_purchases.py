"""Benchmark: the purchases import of a 200,000-row XLSX (issue 23 item 7: peak under 300 MB), and the ways of
reading the workbook it was chosen from.

Usage:
    .venv/bin/python -m bench.import_purchases [--rows 200000] [--database-url URL] [--file existing.xlsx]
        [--in-process] [--smoke]

Writes a workbook in the template's layout (a distinct evidence number per row, every county and channel of the
province), then, each in a fresh process of its own so that each peak is its own (ru_maxrss): (1) openpyxl's
read-only iteration, (2) python-calamine's whole-sheet read (``CalamineWorkbook`` + ``iter_rows``: the sheet's
cells are held in Rust until the last row is read), (3) the registry's reader (``transfer.reader.read_table``)
and (4) the registry's import (read + check + write, then the commit). ``--in-process`` runs every step in this
process (no step's own peak then); ``--smoke``: 300 rows, in-process; ``--whole``: every workbook read whole by
calamine, as before the streaming reader.

Measured 2026-12-07 on the shared 2-core machine under heavy load (load average 12-18: compare within a run), 200,000
rows, 17 MB workbook (234 MB of sheet XML), SQLite (``.venv/bin/python -m bench.import_purchases --file F --skip
openpyxl``, and ``--whole``):
    calamine's read alone           46.1 s  peak 400 MB
    registry reader, calamine       61.3 s  peak 400 MB   (--whole)
    registry reader, streamed      156.4 s  peak 107 MB
    import, calamine (before)      405.2 s  peak 433 MB   (the reader before this change; issue 23: 414 MB)
    import, streamed               600.8 s  peak 206 MB   (target < 300 MB; run beside the SQLite suite)
    openpyxl read-only: 20,000 rows took 164.6 s (stopped there), lxml's iterparse ~1.5x the standard library's.
"""

import argparse
import random
import time
from datetime import date, timedelta
from pathlib import Path

from bench import figure
from bench.import_placements import bare_read, calamine_read, peak_mb, prepare, registry_import, run_step, setup
from registry.purchases.transfer import HEADERS

COUNTIES = [("513431", "昭觉县"), ("513429", "布拖县"), ("513430", "金阳县"), ("513432", "喜德县"),
            ("510824", "苍溪县"), ("511923", "平昌县")]  # fmt: skip
CHANNELS = ["832平台", "展销会", "政采云四川馆", "消费帮扶专馆专柜专区", "电商平台", "直采"]
PRODUCTS = [("苦荞茶", "茶叶"), ("马铃薯", "果蔬"), ("核桃", "果蔬"), ("腊肉", "肉禽蛋奶"), ("菜籽油", "粮油"),
            ("花椒", "加工食品"), ("天麻", "中药材"), ("松茸", "菌类山珍")]  # fmt: skip


def make_workbook(path: Path, rows: int, seed: int = 23) -> None:
    from openpyxl import Workbook

    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("消费帮扶")
    sheet.append(HEADERS)
    for n in range(rows):
        code, county = COUNTIES[n % len(COUNTIES)]
        product, category = rng.choice(PRODUCTS)
        day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 600))
        sheet.append([
            day.isoformat(), f"宁波市某单位食堂{n % 700}", "食堂", "浙江省", "宁波市", f"{county}某农业合作社{n % 90}",
            "合作社", code, county, product, category, str(rng.randint(100, 500000)), rng.choice(CHANNELS),
            rng.choice(["采购", "帮助销售"]), f"FP-BENCH-{n:07d}", "",
        ])  # fmt: skip
    workbook.save(path)


def calamine_sheet(path: str) -> tuple:
    """python-calamine alone: the whole sheet read, every row's values built (seconds, rows, peak MB)."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    workbook = CalamineWorkbook.from_path(path)
    count = sum(1 for _ in workbook.get_sheet_by_index(0).iter_rows())
    return round(time.perf_counter() - started, 3), count, round(peak_mb())


def _reader(whole: bool) -> None:
    """The registry's reader as it is, or (``whole``) with every workbook read whole by calamine, as before."""
    if whole:
        from registry.kernel.transfer import reader

        reader.STREAM_BYTES = 10**12


def purchases_import(path: str, url: str) -> tuple:
    """The import as the command line and the task run it (chunk by chunk)."""
    from registry.purchases.transfer import import_purchases

    return registry_import(path, url, import_purchases, chunked=True)


STEPS = {
    "openpyxl": lambda a: bare_read(a.file),
    "calamine": lambda a: calamine_sheet(a.file),
    "reader": lambda a: (_reader(a.whole), calamine_read(a.file))[1],
    "setup": lambda a: setup(a.database_url),
    "import": lambda a: (_reader(a.whole), purchases_import(a.file, a.database_url))[1],
}


def step(name: str, path: Path, url: str | None, in_process: bool, whole: bool = False) -> list[float]:
    return run_step("bench.import_purchases", STEPS, name, path, url, in_process, {"whole": whole})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--whole", action="store_true", help="read every workbook whole with calamine (as before)")
    parser.add_argument("--skip", default="", help="comma list of steps not to run: openpyxl,calamine,reader")
    prepared = prepare(parser, STEPS, {"rows": 300, "in_process": True}, make_workbook, "purchases.xlsx", argv)
    if prepared is None:
        return
    args, path, url = prepared
    skip = set(filter(None, args.skip.split(",")))
    for name, what in (("openpyxl", "openpyxl read-only, rows iterated"), ("calamine", "python-calamine alone"),
                       ("reader", "the registry's reader (transfer.reader.read_table), cells to text")):  # fmt: skip
        if name not in skip:
            seconds, _, peak = step(name, path, url, args.in_process, args.whole)
            figure(f"import_purchases.read_{name}", seconds, "s", note=f"{what}; peak {peak:.0f} MB")
    step("setup", path, url, args.in_process)
    seconds, created, peak, app_peak = step("import", path, url, args.in_process, args.whole)
    engine = url.split(":", 1)[0].split("+")[0]
    where = "this process" if args.in_process else "the import's own process"
    how = "read whole by calamine" if args.whole else "the registry's reader"
    figure("import_purchases.import", seconds, "s", note=f"read + check + write {created:.0f} rows, {engine}, {how}")
    figure("import_purchases.import_peak", round(peak), "MB", target="<300MB",
           note=f"ru_maxrss of {where}; the app alone {app_peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
