"""To-dos of the asset register: a county office's assets whose yearly 管护 check is overdue, as one to-do that opens
the register filtered to them (a county may have dozens; each check is entered on the asset's page)."""

from datetime import date

import sqlalchemy as sa
from flask import url_for

from registry.assets import queries
from registry.assets.models import Asset
from registry.kernel.extensions import db
from registry.kernel.roles import Role
from registry.kernel.todos import Todo, todo_source
from registry.permissions import can, scope_filter


@todo_source("asset", "项目资产")
def asset_todos(user, today: date):
    # The county office checks its assets; the offices above follow the register.
    if user.role is not Role.COUNTY or not can(user, "projects.edit"):
        return
    stmt = queries.overdue(sa.select(Asset.id).where(scope_filter(user, Asset)), today)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    if count:
        yield Todo("年度管护检查已逾期", f"{count} 项资产超过一年未做管护检查", url_for("assets.index", overdue="yes"))
