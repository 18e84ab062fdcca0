"""``flask assets from-projects [--apply]``: the reviewed path for legacy projects already at 资产已移交 (the demo's
and imported ones) that have no asset record. A dry run lists them; ``--apply`` creates one draft asset per project,
marked 待核实 and audited, for the county office to confirm or correct on the asset's page."""

import click
from flask import Blueprint

from registry.assets import services
from registry.kernel.audit.services import record
from registry.kernel.extensions import db
from registry.kernel.money import wan
from registry.kernel.services import ServiceError


def legacy_projects() -> list[dict]:
    return services.projects_without_assets(("handed_over",))


def from_projects(*, apply: bool, actor=None, echo=print) -> tuple[int, list[str]]:
    """List (and with ``apply`` create, uncommitted) draft assets; returns (created, problems)."""
    projects = legacy_projects()
    for project in projects:
        echo(f"{project['code']}  {project['name']}  {wan(sum(project['funds'].values()))} 万元")
    if not apply:
        return 0, []
    # A project refused before anything is written (no money) is reported; the other projects go on.
    assets, problems = services.legacy_assets(projects, actor=actor)
    created = len(assets)
    if created:
        record("load", None, actor=actor, entity_type="assets",
               summary=f"由资产已移交的项目补录资产 {created} 项（待核实）")  # fmt: skip
    return created, problems


def register(bp: Blueprint) -> None:
    @bp.cli.command("from-projects")
    @click.option("--apply", is_flag=True, help="创建待核实的资产记录（不加此项只列出）。")
    def from_projects_command(apply):
        """List projects at 资产已移交 without asset records; with --apply create draft (待核实) assets."""
        try:
            created, problems = from_projects(apply=apply, echo=click.echo)
        except ServiceError as exc:  # the batch refused as a whole (a number taken meanwhile): nothing written
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
        count = len(legacy_projects()) + created
        if not apply:
            click.echo(f"共 {count} 个项目已是“资产已移交”但没有资产记录。加 --apply 创建待核实的资产记录。")
            return
        db.session.commit()
        for problem in problems:
            click.echo(f"未补录 {problem}", err=True)
        click.echo(f"已创建待核实资产 {created} 项；请县级协作办在资产页面核实所有权人、管护主体和原值。")
