"""Pages of the demo's 2026Q3 reports as a director turns them (issue 24, section 3): no page of the province's,
凉山州's or a county's report is under a quarter full, no heading or caption is left at the foot of a page, no
small table is cut in two and no split table leaves a row alone (``registry.reports.pages``); and the demo's plans
add up to the targets they were split from.

Cheap on purpose: the reports are laid out by WeasyPrint (no PDF written) for the province, one prefecture and
the two counties with the most content; ``flask reports check-pages --quarter 2026Q3 --all`` checks every one."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Agreement, Indicator, Target
from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.projects.models import FundStage, FundTransaction, Project
from registry.reports import pages
from registry.reports.documents import report_html
from registry.reports.queries import quarter_figures

pytestmark = pytest.mark.xdist_group("demo")

Q3 = Quarter.parse("2026Q3")


def _unit(code: str) -> Unit:
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


@pytest.fixture(scope="module")
def inline_app(demo_app):
    demo_app.config["REPORT_PDF_WORKERS"] = 0  # rendered in this process: no pool of render processes
    return demo_app


#: The province, 凉山州, 越西县 (its asset-owner table was cut 2 + 2, 0a454bc) and 布拖县 (its caption of the
#: overdue problems was left at the foot of page 7 and the disclosure section's at 昭觉, 喜德, 美姑, 雷波, 木里).
UNITS = ["510000", "513400", "513434", "513429"]


@pytest.mark.parametrize("code", UNITS)
def test_no_page_of_a_demo_report_is_one_a_director_would_send_back(inline_app, code):
    with inline_app.test_request_context():
        laid_out = pages.report_pages(report_html(quarter_figures(_unit(code), Q3)))
    assert len(laid_out) > 5
    assert pages.faults(laid_out) == [], code


def test_the_checker_sees_each_fault(inline_app):
    """Each fault made on purpose (forced page breaks) is named with its page."""
    filler = "<p>" + "协作台账" * 700 + "</p>"

    def table(caption, n, apart):
        forced = " style='break-before: page'"
        rows = "".join(f"<tr{forced if i == apart else ''}><td>{i}</td></tr>" for i in range(n))
        return f"<table class='data'><caption>{caption}</caption><tbody>{rows}</tbody></table>"

    def faults(body):
        with inline_app.test_request_context():
            return pages.faults(pages.report_pages(f"<html><body>{body}</body></html>"))

    assert faults("<p>一句话</p>") == ["第 1 页不足四分之一（2%）"]
    assert faults(f"{filler}<h2 style='break-after: page'>一、孤立的标题</h2>{filler}") == [
        "第 2 页页脚处留下标题或表题：一、孤立的标题"
    ]
    assert faults(f"{filler}{table('小表', 4, 2)}{filler}") == ["第 2 页起的小表格「小表」（4 行）被分在 2 页"]
    assert faults(f"{filler}{table('长表', 10, 9)}{filler}") == ["第 3 页只有表格「长表」的 1 行（共 10 行）"]


def test_the_demo_plans_add_up_to_the_targets_they_were_split_from(demo_app):
    """凉山州's 2026 plans (计划) are its counties' 东部财政援助 targets to the 分, not 64,999.99 万元."""
    with demo_app.app_context():
        liangshan = _unit("513400")
        counties = sa.select(Unit.id).where(Unit.prefecture_id == liangshan.id, Unit.kind == UnitKind.COUNTY)
        agreement = db.session.scalar(
            sa.select(Agreement).where(Agreement.year == 2026, Agreement.title.like("%浙川%"))
        )
        targets = db.session.scalar(
            sa.select(sa.func.sum(Target.value))
            .join(Indicator, Indicator.id == Target.indicator_id)
            .where(Target.agreement_id == agreement.id, Indicator.code == "fiscal_funds", Target.unit_id.in_(counties))
        )
        planned = db.session.scalar(
            sa.select(sa.func.sum(FundTransaction.amount_fen))
            .join(Project, Project.id == FundTransaction.project_id)
            .where(
                FundTransaction.stage == FundStage.PLANNED,
                Project.year == 2026,
                Project.programme_id == agreement.programme_id,
                Project.county_id.in_(counties),
            )
        )
        f = quarter_figures(liangshan, Q3)
        fiscal = {r.code: r for r in f.agreements[0].rows}["fiscal_funds"]
    assert planned == targets == fiscal.target
    assert f.funds.total.planned == planned and date(2026, 9, 30) == f.cutoff
