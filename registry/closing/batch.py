"""The report batch after approval (生成全部报告 on the reports list, ``flask reports render``): what the single
download gives (``views._download_of_record``), for many units at once.

For a unit whose quarter is approved the batch holds the version of record, the stored signed bytes the
verification page recognises, instead of a render; a unit not approved is rendered from its figures now, as before
(before approval that render is the only one), and named 非存档版 when a version exists (an unlocked quarter), as
the single download names it. ``reports.batch`` renders and knows nothing of the close; the callers (the job in
``tasks.reports`` and the command line) ask here first which units need a render at all, then write the
batch's 说明.txt, which says what each file is (in a batch where any unit has a version of record).
"""

import time
from dataclasses import dataclass
from pathlib import Path

from registry.closing import services
from registry.counties.models import Unit
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter, local_datetime
from registry.reports.batch import Outcome, Task
from registry.reports.documents import report_stem, short_code

#: The file in every batch saying which report is the archived one and which a render.
NOTES = "说明.txt"
#: A live render of a quarter that has a version of record, in its file name (as the single download names it).

RECORD, LIVE, LIVE_NOT_OF_RECORD = "record", "live", "live_not_of_record"


@dataclass(frozen=True)
class Entry:
    """What a unit's file in the batch is: its kind and, where one exists, the latest version of record."""

    kind: str
    version: int | None = None
    approved_at: str = ""
    code: str = ""


@dataclass
class Plan:
    #: The units to render (``reports.batch.render_many``).
    render: list[Task]
    #: The versions of record already written to the tasks' folder, one outcome each.
    stored: list[Outcome]
    #: unit id -> what its file is.
    entries: dict[int, Entry]


def plan(tasks: list[Task]) -> Plan:
    """Write the version of record of every task whose unit's quarter is approved into the task's folder, named as
    its single download (``…-已审定版本n.pdf``); return the others to be rendered. Reads one stored PDF at a time."""
    render, stored, entries = [], [], {}
    for task in tasks:
        started = time.perf_counter()
        unit = db.session.get(Unit, task.unit_id)
        if unit is None:  # the render reports it
            render.append(task)
            entries[task.unit_id] = Entry(LIVE)
            continue
        quarter = Quarter.parse(task.quarter)
        stem = report_stem(unit.code or str(unit.id), unit.name, quarter)
        report = services.report_of(unit, quarter)
        version = services.version_of_record(unit, quarter)
        if version is not None:
            filename = f"{stem}-已审定版本{version.number}.pdf"
            (Path(task.folder) / filename).write_bytes(version.pdf)
            entries[unit.id] = _entry(RECORD, version)
            stored.append(Outcome(unit.id, filename, time.perf_counter() - started, 0.0))
        else:
            latest = report.versions[-1] if report is not None and report.versions else None
            if latest is None:
                entries[unit.id] = Entry(LIVE)
                render.append(task)
            else:
                entries[unit.id] = _entry(LIVE_NOT_OF_RECORD, latest)
                render.append(Task(task.unit_id, task.quarter, task.user_id, task.folder, not_of_record=True))
        if report is not None:  # with its versions (every stored PDF): not kept for the rest of the batch
            db.session.expunge(report)
    return Plan(render, stored, entries)


def _entry(kind: str, version) -> Entry:
    return Entry(
        kind, version.number, local_datetime(version.approved_at, "%Y-%m-%d"), short_code(version.figures_sha256)
    )


def write_notes(folder: str, quarter: Quarter, outcomes: list[Outcome], entries: dict[int, Entry]) -> list[str]:
    """Write 说明.txt into ``folder`` (UTF-8 with a BOM, so that Windows Notepad shows it) and return its name in a
    list: the batch's files under 已审定存档版 and 实时生成, each with its version and 核验码 where one exists.
    Nothing (``[]``) when no unit of the batch has a version of record: before approval a render is the only
    report there is, and says nothing of the close, as the single download."""
    if all(e.kind == LIVE for e in entries.values()):
        return []
    files = sorted((o.filename, entries.get(o.unit_id, Entry(LIVE))) for o in outcomes if not o.error)
    record = [(name, e) for name, e in files if e.kind == RECORD]
    live = [(name, e) for name, e in files if e.kind != RECORD]
    lines = [
        f"{quarter.label}东西部协作季度报告：文件说明",
        f"生成时间：{local_datetime(utcnow())}",
        "",
        f"已审定存档版（{len(record)} 份）：省协作办审定后存档并签名的版本，"
        "与单份下载的“下载季度报告（PDF）”逐字节相同；扫描封面二维码或在核验页面上传文件，即可核验是否被修改。",
    ]
    lines += [f"  {name}（已审定版本 {e.version}，审定于 {e.approved_at}，核验码 {e.code}）" for name, e in record]
    if not record:
        lines.append("  （无：本批各单位该季度均未审定）")
    lines += [
        "",
        f"实时生成（{len(live)} 份）：按生成时的最新数据生成，不是审定存档的版本，不能用于核验。",
    ]
    for name, e in live:
        if e.kind == LIVE_NOT_OF_RECORD:
            last = f"已审定版本 {e.version}，审定于 {e.approved_at}"
            lines.append(f"  {name}（非存档版：该季度已解锁重新填报，最近一次审定为{last}）")
        else:
            lines.append(f"  {name}（该季度尚未审定）")
    if not live:
        lines.append("  （无）")
    (Path(folder) / NOTES).write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    return [NOTES]
