"""The bench runner (bench/smoke.py, run by ``make test``) fails on a bench that breaks; figure lines parse back.

Cheap: fake benches in a temporary package, run as fresh interpreters (and forked, as make runs them) — no real
bench, no database.
"""

import textwrap
from pathlib import Path

import pytest

from bench import figure, parse_figure
from bench.smoke import Outcome, check, discover, run_bench, takes_database_url

BENCH = Path(__file__).resolve().parent.parent / "bench"

FAKES = {
    "good": """
        import sys
        from bench import figure
        assert sys.argv[1:] == ["--smoke"], sys.argv
        print("a line for people")
        figure("good.time", 1.5, "s", target="<2s")
    """,
    "nofigure": """
        print("done, but no figure line")
    """,
    "raises": """
        from bench import figure
        figure("raises.time", 1.0, "s")
        raise RuntimeError("a figure the bench reads was renamed")
    """,
    "exits": """
        import sys
        from bench import figure
        figure("exits.errors", 3, target="0")
        sys.exit(1)
    """,
    "hangs": """
        import time
        time.sleep(60)
    """,
}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fakes")
    package = root / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in FAKES.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def run_fake(fakes: Path, name: str, fork: bool, timeout: float = 30) -> Outcome:
    env = {"PYTHONPATH": f"{fakes}:{BENCH.parent}"}
    if fork:
        import sys

        sys.path.insert(0, str(fakes))
        try:
            return run_bench(name, "sqlite", ["--smoke"], env, timeout, package="fakebench", fork=True)
        finally:
            sys.path.remove(str(fakes))
    return run_bench(name, "sqlite", ["--smoke"], env, timeout, package="fakebench", fork=False)


@pytest.mark.parametrize("fork", [False, True], ids=["subprocess", "forked"])
def test_a_bench_with_a_figure_and_status_0_passes(fakes, fork):
    outcome = run_fake(fakes, "good", fork)
    assert outcome.problems == [], outcome.output
    assert [f["name"] for f in outcome.figures] == ["good.time"]
    assert "a line for people" in outcome.output


@pytest.mark.parametrize("fork", [False, True], ids=["subprocess", "forked"])
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("nofigure", "printed no FIGURE line"),
        ("raises", "exited with status 1"),
        ("exits", "exited with status 1"),
    ],
)
def test_a_broken_bench_fails_the_run(fakes, fork, name, problem):
    outcome = run_fake(fakes, name, fork)
    assert problem in outcome.problems, (outcome.problems, outcome.output)
    if name == "raises":
        assert "RuntimeError: a figure the bench reads was renamed" in outcome.output


def test_a_bench_that_does_not_end_is_killed_and_fails(fakes):
    outcome = run_fake(fakes, "hangs", fork=False, timeout=1)
    assert outcome.timed_out
    assert "did not end in time (killed with its process group)" in outcome.problems


def test_check_needs_a_figure_and_status_0():
    line = "FIGURE x.y value=1s"
    assert check(Outcome("x", "sqlite", returncode=0, output=line)).problems == []
    assert check(Outcome("x", "sqlite", returncode=0, output="x.y 1 s")).problems == ["printed no FIGURE line"]
    assert check(Outcome("x", "sqlite", returncode=2, output=line)).problems == ["exited with status 2"]


def test_every_module_of_bench_is_a_bench_found_without_a_list(tmp_path):
    found = discover()
    assert {"export_placements", "import_placements", "load", "projects_list", "records_list", "report_county",
            "report_queue"} <= set(found)  # fmt: skip
    assert "smoke" not in found
    # A new module in the folder is run without editing the runner.
    for name in ("__init__", "smoke", "alpha", "_helper", "scale"):
        (tmp_path / f"{name}.py").write_text("")
    assert discover(tmp_path) == ["alpha", "scale"]


def test_the_benches_that_take_a_database_url_run_on_postgresql_too():
    takes = {name for name in discover() if takes_database_url(BENCH / f"{name}.py")}
    assert {"export_placements", "import_placements", "load", "projects_list", "records_list",
            "report_county"} <= takes  # fmt: skip
    assert "report_queue" not in takes  # SQLite only (its queue's storage is --redis)


def test_a_figure_line_reads_back(capsys):
    line = figure("report_county.pdf_ratio", 1.0312, "x", target="≤ 1.1x", baseline="weasyprint_alone",
                  note="end to end ÷ WeasyPrint alone")  # fmt: skip
    assert capsys.readouterr().out == line + "\n"
    assert line == (
        "FIGURE report_county.pdf_ratio value=1.031x target=≤1.1x baseline=weasyprint_alone"
        "  # end to end ÷ WeasyPrint alone"
    )
    assert parse_figure(line) == {"name": "report_county.pdf_ratio", "value": 1.031, "unit": "x",
                                  "target": "≤1.1x", "baseline": "weasyprint_alone",
                                  "note": "end to end ÷ WeasyPrint alone"}  # fmt: skip
    assert parse_figure(figure("load.errors", 0, target="0")) == {
        "name": "load.errors", "value": 0.0, "unit": "", "target": "0", "baseline": None, "note": ""}  # fmt: skip
    assert parse_figure(figure("x.t", 1234.56, "ms", baseline=1000))["baseline"] == "1000ms"
    assert parse_figure("1. reads: 8 GETs in 0.7 s") is None
    with pytest.raises(ValueError):
        figure("two words", 1)
    with pytest.raises(TypeError):
        figure("x.y", "fast")
