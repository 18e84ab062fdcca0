"""`flask` commands: first administrator, reference geography, demo data, identity-number keys. Thin: they call
services."""

import os
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from registry import demo
from registry.auth.models import User
from registry.auth.services import create_user
from registry.closing import batch as of_record
from registry.counties.models import Side, Unit, UnitKind
from registry.counties.services import DATA_DIR, load_divisions
from registry.demo import scale as demo_scale
from registry.findings.commands import problems_group
from registry.kernel.config import (
    ID_KEY_NEXT_FILE,
    ConfigurationError,
    check_fernet_key,
    promote_next_key,
    write_key_file,
)
from registry.kernel.database import refresh_planner_statistics, writing
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer import release_write_lock, run_steps
from registry.kernel.transfer.reader import read_table
from registry.permissions import can, report_pairings, report_visible
from registry.placements import months as placement_months
from registry.placements.rotation import key_status, reencrypt
from registry.reports import batch, pages
from registry.reports.documents import report_html
from registry.reports.queries import paired_counties, quarter_figures
from registry.reports.services import parse_quarter
from registry.reports.workers import worker_config
from registry.tasks.imports import IMPORTERS


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
        names = ("divisions.csv", "sichuan_categories.csv", "sichuan_poverty_counties.csv")
        missing = [n for n in names if not (data_dir / n).is_file()]
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


@click.group("figures")
def figures_group():
    """Derived figures: rows every page counts from."""


@figures_group.command("refresh")
@click.option("--all", "everything", is_flag=True, help="全部重建（默认只补建缺少的和已过期的）。")
@with_appcontext
def figures_refresh_command(everything):
    """Build the monthly people-in-work rows that are missing or behind this year (after an upgrade; the nightly
    task does the same), or all of them with ``--all``."""
    counties = placement_months.rebuild_all() if everything else placement_months.extend_spans()
    db.session.commit()
    refresh_planner_statistics(db.session)
    click.echo(f"每月在岗人数：已重建 {counties} 个县。")


@click.group("demo")
def demo_group():
    """Demonstration data for trying the registry out."""


@demo_group.command("load")
@click.option(
    "--scale",
    type=click.Choice(["demo", "province"]),
    default="demo",
    show_default=True,
    help="province：在演示数据之上按真实省份的规模导入五年的记录（约需数分钟）。",
)
@click.option(
    "--fraction",
    type=click.FloatRange(0.0001, 1.0),
    default=1.0,
    show_default=True,
    help="省级规模乘以该比例（如 0.01）。",
)
@with_appcontext
def demo_load_command(scale, fraction):
    """Load programmes, the documented pairings, sample organisations and one account per role; with
    ``--scale province`` also a province's volume of records through the importers (``registry.demo.scale``)."""
    if current_app.config.get("PRODUCTION"):
        raise click.ClickException("生产环境（PRODUCTION=True）不能导入演示数据。")
    try:
        summary = demo.load()
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"演示数据未导入：{exc}") from exc
    db.session.commit()
    refresh_planner_statistics(db.session)
    click.echo(summary)
    if scale == "province":
        try:
            click.echo(demo_scale.load_province(fraction, echo=lambda text: click.echo(text, err=True)))
        except ServiceError as exc:
            db.session.rollback()
            raise click.ClickException(f"省级规模数据未导入完：{exc}") from exc
        refresh_planner_statistics(db.session)
    click.echo(demo.logins_text())


@click.group("transfer")
def transfer_group():
    """Spreadsheet import and export from the command line."""


def _import_file(stream: str, path: Path, username: str) -> None:
    """Import a file of ``stream`` as ``username``: all rows or none, with progress, notes and row errors."""
    # As the background task: SQLite transactions take the write lock at BEGIN, and a chunked import (placements,
    # purchases) commits chunk by chunk so that other users' writes get in (transfer.Batch.checkpoint).
    with writing():
        _import_file_writing(stream, path, username)


def _import_file_writing(stream: str, path: Path, username: str) -> None:
    steps_function, permission, label = IMPORTERS[stream]
    if not path.is_file():
        raise click.ClickException(f"文件不存在：{path}")
    user = db.session.scalar(sa.select(User).where(User.username == username, User.is_active.is_(True)))
    if user is None or not can(user, permission):
        raise click.ClickException(f"用户 {username} 不存在、已停用或无权登记{label}。")
    try:
        release_write_lock()
        headers, rows = read_table(path, path.name)

        def progress(done):
            click.echo(f"\r已检查 {done} 行…", nl=False, err=True)

        result = run_steps(steps_function(headers, rows, user=user, filename=path.name), progress)
        click.echo("", err=True)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"未导入：{exc}") from exc
    for note in result.notes[:50]:
        click.echo(f"说明：{note}", err=True)
    if result.errors:
        db.session.rollback()
        for error in result.errors[:50]:
            click.echo(f"第 {error.row} 行 {error.column}：{error.reason}（{error.value}）", err=True)
        raise click.ClickException(f"未导入：{len(result.errors)} 处错误（共 {result.rows} 行）。")
    db.session.commit()
    click.echo(f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}。")


@transfer_group.command("import")
@click.argument("stream", type=click.Choice(list(IMPORTERS)))
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True, help="以该用户的身份和管辖范围导入（记入审计日志）。")
@with_appcontext
def import_command(stream, path, username):
    """Import an XLSX or CSV of STREAM (placements, purchases, exchanges, projects, funds, targets, entries…)."""
    _import_file(stream, path, username)


@transfer_group.command("import-placements")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True, help="以该用户的身份和管辖范围导入（记入审计日志）。")
@with_appcontext
def import_placements_command(path, username):
    """Import a placements XLSX or CSV (the same as ``flask transfer import placements``)."""
    _import_file("placements", path, username)


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
        # An approved quarter's report is its version of record (the stored signed PDF), as the single download
        # gives it; only the others are rendered. 说明.txt says which file is which.
        plan = of_record.plan(tasks)
        db.session.commit()  # ends the read before the renders
        failed = []
        done_count = len(plan.stored)

        def done(outcome):
            nonlocal done_count
            done_count += 1
            if outcome.error:
                failed.append(outcome)
            bar = "#" * (30 * done_count // len(tasks))
            click.echo(f"\r生成{quarter.label}报告 [{bar:<30}] {done_count}/{len(tasks)}", nl=False, err=True)

        outcomes = plan.stored + batch.render_many(
            plan.render, workers=workers, config=worker_config(current_app), app=current_app, on_done=done
        )
        click.echo("", err=True)
        written = [o.filename for o in outcomes if not o.error]
        for outcome in failed:
            unit = db.session.get(Unit, outcome.unit_id)
            click.echo(f"失败：{unit.name if unit else outcome.unit_id}：{outcome.error}", err=True)
        # A batch with failures writes nothing unless asked: a half-filled folder or zip is easily taken for all.
        if failed and not (keep_partial and written):
            raise click.ClickException(f"{len(failed)} 份报告生成失败（见上），未写出任何文件。")
        notes = of_record.write_notes(folder, quarter, outcomes, plan.entries)
        target = batch.write_output(folder, [*written, *notes], out)
    stored = f"（其中已审定存档版 {len(plan.stored)} 份，见{of_record.NOTES}）" if plan.stored else ""
    click.echo(f"已生成 {len(written)} 份报告{stored}：{target}")
    if failed:
        raise click.ClickException(
            f"{len(failed)} 份报告生成失败（见上）；已按 --keep-partial 写出其余 {len(written)} 份。"
        )


@reports_group.command("check-pages")
@click.option("--quarter", "quarter_text", required=True, help="季度，如 2026Q3。")
@click.option("--unit", "codes", multiple=True, help="县、市(州)或省的行政区划代码，可重复。")
@click.option("--all", "all_paired", is_flag=True, help="该季度全部结对县，及其市(州)和全省。")
@with_appcontext
def reports_check_pages_command(quarter_text, codes, all_paired):
    """Lay out quarterly reports and name the pages a director would send back (registry.reports.pages): a page
    under a quarter full, a heading or caption at a page's foot, a small table cut in two, a row alone. Exits 1
    when any is found."""
    try:
        quarter = parse_quarter(quarter_text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    west = sa.and_(Unit.side == Side.WEST, Unit.kind.in_((UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY)))
    units = [db.session.scalar(sa.select(Unit).where(Unit.code == code.strip(), west)) for code in codes]
    if None in units:
        raise click.ClickException("没有该代码的四川省、市(州)或县(市、区)。")
    if all_paired:
        sichuan = db.session.scalar(sa.select(Unit).where(west, Unit.kind == UnitKind.PROVINCE))
        counties = paired_counties(sichuan, quarter, None) if sichuan else []
        prefectures = {c.prefecture_id for c in counties}
        units += [sichuan] if sichuan else []
        units += db.session.scalars(sa.select(Unit).where(Unit.id.in_(prefectures)).order_by(Unit.code)).all()
        units += counties
    if not units:
        raise click.ClickException("请用 --unit 指定单位代码，或用 --all 检查全部结对县及其市(州)和全省。")
    bad = 0
    with current_app.test_request_context():
        for unit in dict.fromkeys(units):
            laid_out = pages.report_pages(report_html(quarter_figures(unit, quarter)))
            found = pages.faults(laid_out)
            fills = " ".join(f"{p.fill:.0%}" for p in laid_out)
            click.echo(f"{unit.code} {unit.name}：{len(laid_out)} 页（{fills}）{'' if found else ' 通过'}")
            for fault in found:
                click.echo(f"  {fault}")
            bad += bool(found)
    if bad:
        raise click.ClickException(f"{bad} 份报告有页面问题（见上）。")


@click.group("idnumbers")
def idnumbers_group():
    """Identity numbers at rest: how they are stored, encrypting numbers stored as typed, rotating the key."""


_OLD_KEYS = click.option(
    "--old-key",
    "old_keys",
    multiple=True,
    help="保存部分号码时用过的旧密钥（可重复）；当前密钥总会使用。",
)


@idnumbers_group.command("status")
@_OLD_KEYS
@with_appcontext
def idnumbers_status_command(old_keys):
    """Count stored numbers by how they are held (as typed, current key, old key, unreadable); never shows one."""

    status = key_status(current_app.config["ID_NUMBER_KEY"], _checked_keys(old_keys, "--old-key"))
    click.echo(
        f"身份证号 {status.placements} 条：当前密钥加密 {status.current}，明文 {status.plain}，"
        f"旧密钥加密 {status.old}，无法解密 {status.unreadable}。"
    )
    if status.plain or status.old:
        click.echo("请运行 flask idnumbers encrypt 改用当前密钥加密。")
    if status.unreadable:
        raise click.ClickException(f"{status.unreadable} 条身份证号无法用当前密钥解密：请用 --old-key 提供其密钥。")


@idnumbers_group.command("encrypt")
@_OLD_KEYS
@with_appcontext
def idnumbers_encrypt_command(old_keys):
    """Encrypt under the current key every number stored as typed (or under an --old-key); all or nothing."""

    try:
        result = reencrypt(current_app.config["ID_NUMBER_KEY"], old_keys=_checked_keys(old_keys, "--old-key"))
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(result.summary)


@idnumbers_group.command("rotate")
@click.option("--new-key", help="新密钥（Fernet）；省略时生成。ID_NUMBER_KEY 写在配置中时必须提供。")
@_OLD_KEYS
@with_appcontext
def idnumbers_rotate_command(new_key, old_keys):
    """Re-encrypt every number under a new key and recompute fingerprints, in one transaction; stop the app first.

    With the key in instance/id_number_key the new key is written beside it (id_number_key.next) before the
    commit and moved into place after it: a crash in between leaves both keys on disk, and the next start asks
    the database which one its numbers are under. The old key is kept as id_number_key.retired-<time> for the
    backups taken before. With the key in the configuration, the operator supplies the new one and changes the
    configuration afterwards.
    """
    from cryptography.fernet import Fernet

    current = current_app.config["ID_NUMBER_KEY"]
    key_file = current_app.config.get("ID_NUMBER_KEY_FILE")
    old_keys = _checked_keys(old_keys, "--old-key")
    if new_key:
        (new_key,) = _checked_keys([new_key], "--new-key")
    elif key_file is None:
        raise click.ClickException(
            "ID_NUMBER_KEY 写在配置中：请用 --new-key 提供新密钥（本命令不会改动配置，也不会显示密钥）。"
        )
    new_key = new_key or Fernet.generate_key().decode()
    if new_key == current:
        raise click.ClickException("新密钥与当前密钥相同。")
    pending = Path(key_file).with_name(ID_KEY_NEXT_FILE) if key_file else None
    lock = None
    if pending is not None:
        try:
            lock = write_key_file(pending, new_key, keep_locked=True)
        except FileExistsError as exc:
            raise click.ClickException(f"另一次密钥轮换正在进行（{pending} 已存在）。") from exc
    try:
        try:
            result = reencrypt(new_key, old_keys=(current, *old_keys))
        except BaseException:
            db.session.rollback()
            if pending is not None:
                pending.unlink()  # nothing was written with the new key
            raise
        try:
            db.session.commit()
        except Exception as exc:
            # The commit may have reached the database before failing: the new key stays where it is, and the
            # next start asks the database which key its numbers are under.
            raise click.ClickException(
                f"提交时出错，无法确定是否已改用新密钥：{exc}。"
                + (f"请勿删除 {pending}，应用下次启动时会自动判断并完成或撤销轮换。" if pending else "")
            ) from exc
        retired = promote_next_key(current_app.instance_path) if pending is not None else None
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if lock is not None:
            os.close(lock)
    current_app.config["ID_NUMBER_KEY"] = new_key
    click.echo(result.summary)
    if retired is not None:
        click.echo(
            f"新密钥已写入 {key_file}。旧密钥另存为 {retired}：只在读取轮换前的数据库备份时需要，"
            "请与这些备份一同保管或删除。请重启应用。"
        )
    else:
        click.echo("身份证号已改用新密钥加密：请立即把配置中的 ID_NUMBER_KEY 改为新密钥并重启应用。")


def _checked_keys(keys, option) -> tuple[str, ...]:

    try:
        return tuple(check_fernet_key(k.strip(), option) for k in keys)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def init_app(app):
    app.cli.add_command(create_admin_command)
    app.cli.add_command(geo_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(figures_group)
    app.cli.add_command(transfer_group)
    app.cli.add_command(reports_group)
    app.cli.add_command(idnumbers_group)
    app.cli.add_command(problems_group)
