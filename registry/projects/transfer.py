"""Projects to spreadsheets: the export of the filtered list (every page), read in batches."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Unit
from registry.extensions import db
from registry.money import rate, wan
from registry.pairings.models import Pairing
from registry.projects.models import Project

EXPORT_HEADERS = [
    "项目编号", "项目名称", "市(州)", "县(市、区)", "东部结对单位", "协作类型", "年度", "项目类别", "实施方式",
    "资金层级", "状态", "计划资金(万元)", "到位资金(万元)", "拨付资金(万元)", "资金使用率(%)", "实施单位", "责任人",
    "计划开工", "计划完工", "实际开工", "实际完工", "带动人数", "其中脱贫人口",
]  # fmt: skip


def export_rows(stmt):
    """Rows of the export, streamed in batches so a large selection stays within memory."""
    ids = db.session.scalars(stmt.with_only_columns(Project.id).order_by(Project.code)).all()
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        projects = db.session.scalars(
            sa.select(Project)
            .options(
                joinedload(Project.county).joinedload(Unit.prefecture),
                joinedload(Project.pairing).joinedload(Pairing.east_unit).joinedload(Unit.parent),
                joinedload(Project.programme),
            )
            .where(Project.id.in_(batch))
            .order_by(Project.code)
        ).unique()
        for p in projects:
            usage = rate(p.disbursed_fen, p.arrived_fen)
            yield [
                p.code, p.name, p.county.prefecture.name if p.county.prefecture else "", p.county.name,
                p.pairing.east_unit.display_name, p.programme.name, p.year, p.category.label, p.delivery_mode.label,
                p.funding_level.label, p.status.label, wan(p.planned_fen, 4), wan(p.arrived_fen, 4),
                wan(p.disbursed_fen, 4), "" if usage is None else str(usage), p.implementing_unit,
                p.responsible_person, p.planned_start, p.planned_finish, p.actual_start, p.actual_finish,
                p.beneficiaries, p.beneficiaries_lifted,
            ]  # fmt: skip
