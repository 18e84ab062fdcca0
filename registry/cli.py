"""`flask` commands: first administrator, reference geography, demo data. Thin: they call services."""

import os
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from registry import demo
from registry.auth.models import User
from registry.auth.services import create_user
from registry.counties.models import Side, Unit, UnitKind
from registry.counties.services import DATA_DIR, load_divisions
from registry.extensions import db
from registry.permissions import can, report_pairings, report_visible
from registry.reports import batch
from registry.reports.queries import paired_counties
from registry.reports.services import parse_quarter
from registry.services import ServiceError
from registry.transfer.placements import import_placements
from registry.transfer.reader import read_table


@click.command("create-admin")
@click.argument("username")
@click.option("--name", "display_name", default="系统管理员", help="显示的姓名。")
@click.password_option(
    "--password",
    prompt="密码",
    confirmation_prompt="再次输入密码",
    help="省略时交互输入。",
)
@with_appcontext
def create_admin_command(username, display_name, password):
    """Create an administrator account (the first one, or another)."""
    try:
        create_user(
            {
                "username": username,
                "display_name": display_name,
                "role": "admin",
                "password": password,
            },
            actor=None,
        )
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"已创建管理员 {username}。")


@click.group("geo")
def geo_group():
    """Reference geography (GB/T 2260 administrative divisions)."""


@geo_group.command("load")
@click.option(
    "--data-dir", default=None, help="含 divisions.csv 与 sichuan_categories.csv 的目录（默认为随程序提供的数据）。"
)
@with_appcontext
def geo_load_command(data_dir):
    """Load or refresh Sichuan, Zhejiang and Guangdong divisions; safe to run repeatedly."""
    if data_dir is not None:
        data_dir = Path(data_dir)
        missing = [n for n in ("divisions.csv", "sichuan_categories.csv") if not (data_dir / n).is_file()]
        if missing:
            raise click.ClickException(f"未导入任何数据：目录 {data_dir} 中缺少 {'、'.join(missing)}。")
    try:
        result = load_divisions(data_dir or DATA_DIR)
    except (ServiceError, OSError) as exc:
        db.session.rollback()
        raise click.ClickException(f"未导入任何数据：{exc}") from exc
    db.session.commit()
    click.echo(
        f"行政区划：新增 {result.created}，更名 {result.renamed}，设置帮扶类别 {result.categorised}，"
        f"未变 {result.unchanged}。"
    )


@click.group("demo")
def demo_group():
    """Demonstration data for trying the registry out."""


@demo_group.command("load")
@with_appcontext
def demo_load_command():
    """Load programmes, the documented pairings, sample organisations and one account per role."""
    if current_app.config.get("PRODUCTION"):
        raise click.ClickException("生产环境（PRODUCTION=True）不能导入演示数据。")
    try:
        summary = demo.load()
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"演示数据未导入：{exc}") from exc
    db.session.commit()
    click.echo(summary)
    click.echo(demo.logins_text())


@click.group("transfer")
def transfer_group():
    """Spreadsheet import and export from the command line."""


@transfer_group.command("import-placements")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True, help="以该用户的身份和管辖范围导入（记入审计日志）。")
@with_appcontext
def import_placements_command(path, username):
    """Import a placements XLSX or CSV: all rows or none, with progress."""

    if not path.is_file():
        raise click.ClickException(f"文件不存在：{path}")
    user = db.session.scalar(sa.select(User).where(User.username == username, User.is_active.is_(True)))
    if user is None or not can(user, "placements.edit"):
        raise click.ClickException(f"用户 {username} 不存在、已停用或无权登记劳务协作。")
    try:
        headers, rows = read_table(path.read_bytes(), path.name)

        def progress(done):
            click.echo(f"\r已检查 {done} 行…", nl=False, err=True)

        result = import_placements(headers, rows, user=user, filename=path.name, progress=progress)
        click.echo("", err=True)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"未导入：{exc}") from exc
    if result.errors:
        db.session.rollback()
        for error in result.errors[:50]:
            click.echo(f"第 {error.row} 行 {error.column}：{error.reason}（{error.value}）", err=True)
        raise click.ClickException(f"未导入：{len(result.errors)} 处错误（共 {result.rows} 行）。")
    db.session.commit()
    click.echo(f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}。")


@click.group("reports")
def reports_group():
    """Quarterly PDF reports."""


@reports_group.command("render")
@click.option("--quarter", "quarter_text", required=True, help="季度，如 2024Q3 或 2024年第3季度。")
@click.option("--unit", "codes", multiple=True, help="县、市(州)或省的行政区划代码，可重复；如 513431。")
@click.option("--all", "all_paired", is_flag=True, help="该季度全部结对县。")
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="输出目录，或以 .zip 结尾的压缩文件。"
)
@click.option("--workers", default=max(1, os.cpu_count() or 1), show_default=True, help="并行进程数。")
@click.option("--user", "username", help="按该用户的管辖范围生成（东部前方工作组只得到本方结对的报告）。")
@click.option("--keep-partial", is_flag=True, help="部分报告失败时仍写出已生成的报告（默认一份也不写）。")
@with_appcontext
def reports_render_command(quarter_text, codes, all_paired, out, workers, username, keep_partial):
    """Render quarterly reports of one unit, a list, or every paired county, in parallel, with progress."""

    try:
        quarter = parse_quarter(quarter_text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not codes and not all_paired:
        raise click.ClickException("请用 --unit 指定单位代码，或用 --all 生成全部结对县的报告。")
    user = None
    if username:
        user = db.session.scalar(sa.select(User).where(User.username == username, User.is_active.is_(True)))
        if user is None:
            raise click.ClickException(f"用户 {username} 不存在或已停用。")
    pairings = report_pairings(user) if user else None
    west = sa.and_(Unit.side == Side.WEST, Unit.kind.in_((UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY)))
    units = []
    for code in dict.fromkeys(codes):
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == code.strip(), west))
        if unit is None:
            raise click.ClickException(f"未生成任何报告：没有代码为 {code} 的四川省、市(州)或县(市、区)。")
        units.append(unit)
    if all_paired:
        sichuan = db.session.scalar(sa.select(Unit).where(west, Unit.kind == UnitKind.PROVINCE))
        units += [u for u in paired_counties(sichuan, quarter, pairings) if u not in units] if sichuan else []
    if user is not None:
        hidden = [u.name for u in units if not report_visible(user, u, quarter)]
        if hidden and not all_paired:
            raise click.ClickException(f"未生成任何报告：{'、'.join(hidden)}不在用户 {username} 的范围内。")
        units = [u for u in units if report_visible(user, u, quarter)]
    if not units:
        raise click.ClickException(f"{quarter.label}没有可生成报告的单位。")
    with batch.scratch_folder() as folder:
        tasks = [batch.Task(u.id, str(quarter), user.id if user else None, folder) for u in units]
        failed = []
        done_count = 0

        def done(outcome):
            nonlocal done_count
            done_count += 1
            if outcome.error:
                failed.append(outcome)
            bar = "#" * (30 * done_count // len(tasks))
            click.echo(f"\r生成{quarter.label}报告 [{bar:<30}] {done_count}/{len(tasks)}", nl=False, err=True)

        outcomes = batch.render_many(
            tasks, workers=workers, config=batch.worker_config(current_app), app=current_app, on_done=done
        )
        click.echo("", err=True)
        written = [o.filename for o in outcomes if not o.error]
        for outcome in failed:
            unit = db.session.get(Unit, outcome.unit_id)
            click.echo(f"失败：{unit.name if unit else outcome.unit_id}：{outcome.error}", err=True)
        # A batch with failures writes nothing unless asked: a half-filled folder or zip is easily taken for all.
        if failed and not (keep_partial and written):
            raise click.ClickException(f"{len(failed)} 份报告生成失败（见上），未写出任何文件。")
        target = batch.write_output(folder, written, out)
    click.echo(f"已生成 {len(written)} 份报告：{target}")
    if failed:
        raise click.ClickException(
            f"{len(failed)} 份报告生成失败（见上）；已按 --keep-partial 写出其余 {len(written)} 份。"
        )


def init_app(app):
    app.cli.add_command(create_admin_command)
    app.cli.add_command(geo_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(transfer_group)
    app.cli.add_command(reports_group)
