"""The spreadsheet kit every stream's ``transfer.py`` is built from: header checks, row errors, date parsing, and
the ``Batch`` through which an import writes with the stream's own services.

Each importer is written as a generator of steps: it yields the number of rows done so far every
``PROGRESS_EVERY`` rows and returns its ImportResult, so the same code reports progress to a streamed page,
to the command line, or to nobody (``run_steps``).

An import is all or nothing: rows are written through the stream's services as they are read (so a row is
checked by exactly the rules a form is checked by, and each record gets its own audit event), and the caller
commits only when no row failed; otherwise it rolls the whole transaction back.
"""

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from registry.audit.services import record
from registry.extensions import db
from registry.services import ServiceError

PROGRESS_EVERY = 1000
#: Audit events of an import's records are written in groups of this many (ids need a flush first).
AUDIT_EVERY = 2000


@dataclass
class RowError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


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


def parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("日期格式应为 YYYY-MM-DD，例如 2024-03-31。")


class Batch:
    """The writes of one import, made by the stream's services.

    It holds the import's own audit event (written first, so every record's event can point to it and its page
    shows 经导入新增/经导入修改), defers the records' audit events until their ids exist (a flush every
    ``AUDIT_EVERY`` records, not one per row), collects the slices of derived tables (placement cells, purchase
    totals) the records touched so each is rebuilt once at the end, and keeps lookups a stream loads once per
    import (``cache``).
    """

    def __init__(self, actor, *, entity_type: str, title: str, filename: str = ""):
        self.actor = actor
        self.entity_type = entity_type
        self.title = title
        self.filename = filename
        self.cache: dict = {}
        self.created: list = []
        self.updated: list = []
        self._pending: list[tuple] = []
        self._touched: dict[Callable, set] = defaultdict(set)
        # Everything the import writes lies inside this SAVEPOINT, so a failed import leaves nothing behind
        # whoever called it (page, command line, task) and whatever that caller does next.
        self._savepoint = db.session.begin_nested()
        self.event = record("import", None, actor=actor, entity_type=entity_type, summary=f"导入{title} {filename}")
        db.session.flush()

    def audit(self, action: str, entity, *, summary: str, changes: dict, context=None) -> None:
        """Record ``entity``'s create or update as part of this import (its event is written at the next flush)."""
        (self.created if action == "create" else self.updated).append(entity)
        self._pending.append((action, entity, summary, changes, context))
        if len(self._pending) >= AUDIT_EVERY:
            self.flush()

    def touch(self, refresh: Callable, slices) -> None:
        """Note slices of a derived table to rebuild with ``refresh(slices)`` when the import ends."""
        self._touched[refresh].update(slices)

    def flush(self) -> None:
        db.session.flush()
        for action, entity, summary, changes, context in self._pending:
            label = "经导入新增" if action == "create" else "经导入修改"
            record(action, entity, actor=self.actor, summary=f"{label}（{self.filename or self.title}）：{summary}",
                   changes=changes, context=context, batch=self.event)  # fmt: skip
        self._pending.clear()

    def finish(self, result: ImportResult) -> None:
        """Write what is still pending, rebuild the derived tables once, and complete the import's own event."""
        self.flush()
        for refresh, slices in self._touched.items():
            refresh(slices)
        self.event.summary = (
            f"导入{self.title} {self.filename}：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
            f"未变 {result.unchanged}"
        )[:500]
        self.event.changes = {
            "created": [e.id for e in self.created],
            "updated": [e.id for e in self.updated],
        }
        self._savepoint.commit()

    def abandon(self, result: ImportResult) -> None:
        """Undo every write of the import (some row failed): nothing was created, changed or left unchanged."""
        self._pending.clear()
        self._savepoint.rollback()
        result.created = result.updated = result.unchanged = 0

    def close(self, result: ImportResult) -> ImportResult:
        """Finish the import if every row passed, else abandon it; returns ``result``."""
        if result.errors:
            self.abandon(result)
        else:
            self.finish(result)
        return result


def cache_of(batch: Batch | None) -> dict | None:
    """The import's lookups kept between rows, or None outside an import."""
    return batch.cache if batch is not None else None


def parse_cells(cell: dict, texts: dict, enums: dict, values: dict, fail) -> None:
    """Text columns ({header: (attribute, max length)}) and labelled choices ({header: (attribute, enum)}) of one
    row into ``values``; ``fail(header, reason)`` for a text too long or a label that is not one of the enum's."""
    for header, (attr, limit) in texts.items():
        if cell[header]:
            if len(cell[header]) > limit:
                fail(header, f"不能超过 {limit} 个字。")
            else:
                values[attr] = cell[header]
    for header, (attr, enum) in enums.items():
        if cell[header]:
            labels = {m.label: m for m in enum}
            if cell[header] in labels:
                values[attr] = labels[cell[header]]
            else:
                fail(header, "应为以下之一：" + "、".join(labels) + "。")


def written(action: str, entity, *, actor, summary: str, changes: dict, batch: Batch | None = None, context=None):
    """The audit entry of a service's write: at once (forms), or as part of an import's batch."""
    if batch is not None:
        batch.audit(action, entity, summary=summary, changes=changes, context=context)
    else:
        record(action, entity, actor=actor, summary=summary, changes=changes, context=context)
