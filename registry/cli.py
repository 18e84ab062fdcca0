"""`flask` commands: first administrator, reference geography, demo data. Thin: they call services."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from registry.extensions import db
from registry.services import ServiceError


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
    from registry.auth.services import create_user

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
    from registry.counties.services import DATA_DIR, load_divisions

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
    from registry import demo

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
    import sqlalchemy as sa

    from registry.auth.models import User
    from registry.permissions import can
    from registry.transfer.placements import import_placements
    from registry.transfer.reader import read_table

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


def init_app(app):
    app.cli.add_command(create_admin_command)
    app.cli.add_command(geo_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(transfer_group)
