"""Asset numbers (项目编号-01, -02…): one query per number for a single asset, none per asset in a batch."""

import pytest
import sqlalchemy as sa

from registry.assets import commands, services
from registry.assets.models import Asset, AssetSource, AssetStateChange
from registry.assets.services import next_number, taken_numbers
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.projects.models import FundTransaction, Project, ProjectStatus
from tests.factories import make_asset, make_transaction


def test_a_projects_next_number_counts_its_own_numbers_only(app, world_records):
    w = world_records
    project = db.session.get(Project, w.done_a.id)
    make_asset(project, number=f"{project.code}-97")
    # A code holding LIKE's wildcards must not read another project's numbers as its own.
    make_asset(project, number=f"{project.code}X-98")
    assert next_number(project.code) == f"{project.code}-98"
    assert next_number(project.code.replace("-", "_")) == f"{project.code.replace('-', '_')}-01"
    taken = taken_numbers({})
    assert next_number(project.code, taken) == f"{project.code}-98"
    assert next_number(project.code + "X", taken) == f"{project.code}X-99"


def test_a_batch_reads_the_numbers_once_and_numbers_each_project(app, world_records):
    w = world_records
    projects = [db.session.get(Project, w.done_a.id), db.session.get(Project, w.done_b.id)]
    db.session.execute(sa.delete(AssetSource))
    db.session.execute(sa.delete(Asset))
    for project in projects:
        project.status = ProjectStatus.HANDED_OVER
        make_transaction(project)
    db.session.flush()
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(db.engine, "before_cursor_execute", listen)
    try:
        created, problems = commands.from_projects(apply=True, echo=lambda _line: None)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listen)
    assert (created, problems) == (2, [])
    numbers = sorted(db.session.scalars(sa.select(Asset.number)))
    assert numbers == sorted(f"{p.code}-01" for p in projects)
    assert sum("assets.number" in s and "LIKE" in s.upper() for s in statements) == 0


def test_the_batch_reports_a_project_without_money_and_refuses_whole_when_a_number_is_taken(app, world_records):
    """``from-projects --apply`` inserts its drafts together: a project without money is reported and the others go
    on; a number another writer takes after the batch read the numbers refuses the batch, and nothing is written."""
    w = world_records
    funded, empty = db.session.get(Project, w.done_a.id), db.session.get(Project, w.done_b.id)
    db.session.execute(sa.delete(AssetSource))
    db.session.execute(sa.delete(Asset))
    for project in (funded, empty):
        project.status = ProjectStatus.HANDED_OVER
    make_transaction(funded)
    db.session.execute(sa.delete(FundTransaction).where(FundTransaction.project_id == empty.id))
    db.session.flush()
    created, problems = commands.from_projects(apply=True, echo=lambda _line: None)
    assert created == 1 and problems == [f"{empty.code}：项目 {empty.code} 没有资金记录，无法补录资产原值。"]
    assert db.session.scalar(sa.select(Asset.number)) == f"{funded.code}-01"
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity_type == "assets")).all()
    assert {(e.action, e.entity_id is not None) for e in events} >= {("create", True), ("load", False)}
    steps = db.session.scalar(sa.select(sa.func.count()).select_from(AssetStateChange))
    assert steps == 1  # its 登记 step

    db.session.execute(sa.delete(AssetStateChange))
    db.session.execute(sa.delete(AssetSource))
    db.session.execute(sa.delete(Asset))
    make_transaction(empty)
    db.session.flush()
    rival = f"{empty.code}-01"
    real = services.taken_numbers

    def taken_then_rival(cache):  # another writer registers the number once the batch has read the numbers
        numbers = real(cache)
        make_asset(funded, number=rival)
        return numbers

    services.taken_numbers = taken_then_rival
    try:
        with pytest.raises(ServiceError, match="资产编号已被其他操作占用，未补录任何资产"):
            commands.from_projects(apply=True, echo=lambda _line: None)
    finally:
        services.taken_numbers = real
    assert list(db.session.scalars(sa.select(Asset.number))) == [rival]  # the rival's, none of the batch's
