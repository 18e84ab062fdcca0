"""Asset numbers (项目编号-01, -02…): one query per number for a single asset, none per asset in a batch."""

import sqlalchemy as sa

from registry.assets import commands
from registry.assets.models import Asset, AssetSource
from registry.assets.services import next_number, taken_numbers
from registry.kernel.extensions import db
from registry.projects.models import Project, ProjectStatus
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
