"""Spreadsheet round trip (XLSX/CSV): templates equal to exports, all-or-nothing imports with row errors.

Each importer is written as a generator of steps: it yields the number of rows checked so far every
``PROGRESS_EVERY`` rows and returns its ImportResult, so the same code reports progress to a streamed page,
to the command line, or to nobody (``run_steps``).
"""

import functools

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
