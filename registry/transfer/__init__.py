"""Spreadsheet round trip (XLSX/CSV): templates equal to exports, all-or-nothing imports with row errors.

Each importer is written as a generator of steps: it yields the number of rows checked so far every
``PROGRESS_EVERY`` rows and returns its ImportResult, so the same code reports progress to a streamed page,
to the command line, or to nobody (``run_steps``).
"""

import functools

from registry.services import ServiceError

PROGRESS_EVERY = 1000


def run_steps(steps, progress=None):
    """Drive an importer's generator to the end, passing each progress count on; return its result."""
    while True:
        try:
            done = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done)


def runner(steps_function):
    """``import_x(..., progress=None)`` for a generator function ``import_x_steps(...)``."""

    @functools.wraps(steps_function)
    def run(*args, progress=None, **kwargs):
        return run_steps(steps_function(*args, **kwargs), progress)

    return run


def column_index(headers: list[str], expected: list[str]) -> dict[str, int]:
    """{column: position} of a file whose header row must hold exactly the template's columns (any order).

    :raise ServiceError: naming the missing, unknown and repeated columns.
    """
    missing = [h for h in expected if h not in headers]
    unknown = [h for h in headers if h and h not in expected]
    repeated = sorted({h for h in headers if h and headers.count(h) > 1})
    problems = [
        label + "、".join(names)
        for label, names in (("缺少列：", missing), ("无法识别的列：", unknown), ("重复的列：", repeated))
        if names
    ]
    if problems:
        raise ServiceError("表头与模板不一致（" + "；".join(problems) + "）。请下载模板后按模板填写。")
    return {h: headers.index(h) for h in expected}
