"""The county report's projects in a few lines (issue 23: a county's 250 project rows made its PDF 20 pages and most
of its render time): ``ProjectsSection.summary`` groups the year's projects by status and other years' by year, and
every line adds up to the group's and the section's totals, on the demo's counties."""

import pytest
import sqlalchemy as sa

from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.projects.models import Project
from registry.reports.documents import report_html
from registry.reports.queries import quarter_figures

pytestmark = pytest.mark.xdist_group("demo")


def _amounts(funds):
    return funds.year.amounts + funds.to_date.amounts


def test_summary_lines_add_up_to_the_groups_and_the_section(demo_app):
    quarter = Quarter.parse("2026Q3")  # the demo's quarter of record (tests/test_reconciliation.py)
    with demo_app.app_context():
        counties = db.session.scalars(
            sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.id.in_(sa.select(Project.county_id)))
        ).all()
        checked = 0
        for county in counties:
            f = quarter_figures(county, quarter)
            section = f.projects
            lines = section.summary(quarter.year)
            groups = iter(section.groups)
            parts = []
            for line in lines:
                if line.kind == "group":
                    group, parts = next(groups), []
                    assert line.count == len(group.projects) and line.in_count == group.in_count
                elif line.kind == "part":
                    parts.append(line)
                elif line.kind == "subtotal":
                    assert _amounts(line.funds) == _amounts(group.total)
                    assert tuple(map(sum, zip(*(_amounts(p.funds) for p in parts), strict=True))) == _amounts(
                        group.total
                    )
                    assert sum(p.count for p in parts) == line.count == len(group.projects)
                    assert sum(p.beneficiaries for p in parts) == line.beneficiaries
                    checked += 1
                elif line.kind == "apart":
                    group = next(groups)
                    assert not group.counted and _amounts(line.funds) == _amounts(group.total)
                else:
                    assert line.kind == "total" and _amounts(line.funds) == _amounts(section.total)
                    assert line.count == sum(len(g.projects) for g in section.groups if g.counted)
            assert next(groups, None) is None
            # The report prints the lines and says where every project is listed.
            html = report_html(f)
            assert "帮扶项目汇总" in html and f"共 {len(section.projects)} 个" in html
        assert checked >= 2
        db.session.remove()
