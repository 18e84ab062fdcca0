"""`flask tasks consumer` (run the queue), `flask tasks notify`, `flask tasks search-index`, `flask backup now` and
`flask backup restore`."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from registry.kernel import search
from registry.kernel.database import writing
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.tasks import backup, reminders
from registry.tasks.queue import huey


@click.group("tasks")
def tasks_group():
    """Background tasks (huey): the consumer and the periodic checks."""


@tasks_group.command("consumer")
@click.option("-w", "--workers", default=2, show_default=True, help="并行执行任务的工作线程（或进程）数。")
@click.option("-k", "--worker-type", type=click.Choice(["thread", "process"]), default="thread", show_default=True)
@click.option("-n", "--no-periodic", is_flag=True, help="不运行定时任务（多个消费者时只让一个运行定时任务）。")
@with_appcontext
def consumer_command(workers, worker_type, no_periodic):
    """Run the task consumer until Ctrl-C (SIGINT finishes running tasks; SIGTERM interrupts them)."""
    config = current_app.config
    consumer = huey.create_consumer(
        workers=workers,
        worker_type=worker_type,
        periodic=not no_periodic,
        initial_delay=0.1,
        backoff=1.15,
        max_delay=float(config["TASKS_POLL_MAX_SECONDS"]),
        scheduler_interval=1,
        check_worker_health=True,
        health_check_interval=1,
        # Locks held by a killed consumer would otherwise block their task forever.
        flush_locks=True,
    )
    click.echo(f"后台任务消费者：{workers} 个{'线程' if worker_type == 'thread' else '进程'}，队列 {huey.storage.name}")
    consumer.run()


@tasks_group.command("notify")
@with_appcontext
def notify_command():
    """Run the reminder checks now (the consumer runs them daily at 01:00)."""
    with writing():
        count = reminders.notify()
    click.echo(f"新增通知 {count} 条。")


@tasks_group.command("search-index")
@with_appcontext
def search_index_command():
    """Bring the keyword index up to date now (SQLite; the consumer does it every minute): after a bulk load."""
    click.echo(f"关键词索引新增 {search.catch_up()} 条记录。")


@click.group("backup")
def backup_group():
    """Backups of the database, the instance keys and stored files."""


@backup_group.command("now")
@with_appcontext
def backup_now_command():
    """Take a backup now into BACKUP_FOLDER (and rotate it)."""
    try:
        path = backup.take()
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已备份：{path}")


@backup_group.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="覆盖已有数据和不同的密钥文件。")
@with_appcontext
def backup_restore_command(path, force):
    """Restore a backup into this instance (its database and instance folder). Stop the app and consumers first."""
    try:
        manifest = backup.restore(path, force=force)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"未恢复：{exc}") from exc
    total = sum(manifest["rows"].values())
    click.echo(f"已从 {path.name} 恢复（备份时间 {manifest['created']}，共 {total} 行）。")


def init_app(app):
    app.cli.add_command(tasks_group)
    app.cli.add_command(backup_group)
