"""What the assets ask of county offices, for the reminders (registered by the app layer, ``registry.tasks``):
yearly 管护 checks overdue, and projects accepted (已验收) whose assets are not registered yet.

Each yields ``(county id, key, title, endpoint, url arguments)``; the app layer turns them into notifications to
the county's office staff."""

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa

from registry.assets.models import Asset
from registry.assets.services import CHECK_EVERY_DAYS, last_checks, overdue_clause, projects_without_assets
from registry.kernel.extensions import db


def overdue_checks(today: date) -> Iterable[tuple]:
    """One reminder per asset and year of lateness: the key names the day the check fell due."""
    last = last_checks()
    rows = db.session.execute(
        sa.select(Asset.id, Asset.county_id, Asset.number, Asset.name,
                  sa.func.coalesce(last.c.last, Asset.handed_over_on))
        .outerjoin(last, last.c.asset_id == Asset.id)
        .where(overdue_clause(today, last))
        .order_by(Asset.id)
    )  # fmt: skip
    for asset_id, county_id, number, name, since in rows:
        since = since if isinstance(since, date) else date.fromisoformat(str(since))
        title = (f"资产 {number} {name} 的年度管护检查已逾期：上次检查（或移交）为 {since}，"
                 f"应每 {CHECK_EVERY_DAYS} 天至少检查一次。")  # fmt: skip
        yield county_id, f"asset-check:{asset_id}:{since}", title, "assets.detail", {"asset_id": asset_id}


def awaiting_registration(today: date) -> Iterable[tuple]:
    """Projects at 已验收 that no asset names as its source: the office is asked to register their assets."""
    for project in projects_without_assets(("accepted",)):
        title = f"项目 {project['code']} {project['name']} 已验收，请登记其形成的资产并办理移交。"
        yield (
            project["county_id"],
            f"asset-register:{project['id']}",
            title,
            "assets.create",
            {"project": project["id"]},
        )
