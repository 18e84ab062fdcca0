"""``flask problems check``: run the data checks now (the periodic task runs them every night)."""

import click
from flask.cli import with_appcontext

from registry.findings.services import run_checks
from registry.kernel.database import refresh_planner_statistics, writing
from registry.kernel.extensions import db


@click.group("problems")
def problems_group():
    """整改台账：数据核查。"""


@problems_group.command("check")
@with_appcontext
def check_command():
    """运行数据核查，把新发现的问题线索加入待处理清单（不重复提出已有线索）。"""
    with writing():
        new, total = run_checks(actor=None)
        db.session.commit()
    refresh_planner_statistics(db.session)  # a large job: the planner's statistics of what it wrote
    click.echo(f"数据核查完成：发现 {total} 条线索，其中新增 {new} 条。")
