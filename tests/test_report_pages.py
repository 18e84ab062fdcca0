"""Pages of the demo's 2026Q3 reports as a director turns them (issue 24, section 3): no page of a county's,
prefecture's or the province's report is under a quarter full, the cover of the signed report is one page, and the
demo's plans add up to the targets they were split from."""

import html
import re
import shutil
import subprocess
from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Agreement, Indicator, Target
from registry.counties.models import Unit, UnitKind
from registry.extensions import db
from registry.periods import Quarter
from registry.projects.models import FundStage, FundTransaction, Project
from registry.reports.documents import report_pdf
from registry.reports.queries import quarter_figures

pytestmark = [
    pytest.mark.xdist_group("demo"),
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (make system-test) reads the pages"),
]

Q3 = Quarter.parse("2026Q3")
#: A4 in points and the report's margins (static/css/report.css: 22 mm top, 20 mm bottom).
PAGE_TOP, PAGE_BOTTOM = 22 / 25.4 * 72, 842 - 20 / 25.4 * 72


def page_fill(pdf: bytes) -> list[float]:
    """Per page, how far down the body's text reaches, as a share of the area between the margins (the running
    header and footer left out)."""
    out = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    fills = []
    for page in out.decode().split("<page ")[1:]:
        bottoms = [
            float(y_max)
            for y_min, y_max in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', page)
            if float(y_min) > PAGE_TOP - 2 and float(y_max) < PAGE_BOTTOM - 1
        ]
        fills.append((max(bottoms, default=PAGE_TOP) - PAGE_TOP) / (PAGE_BOTTOM - PAGE_TOP))
    return fills


def page_texts(pdf: bytes) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return [html.unescape(re.sub(r"\s+", "", p)) for p in out.decode().split("\f")]


def _unit(code: str) -> Unit:
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


#: The province, 凉山州, and the counties whose reports ended on a page holding the signatures alone.
UNITS = ["510000", "513400", "511900", "513434", "513437", "511921", "513327"]


@pytest.mark.parametrize("code", UNITS)
def test_no_page_of_a_demo_report_is_under_a_quarter_full(demo_app, code):
    with demo_app.test_request_context():
        f = quarter_figures(_unit(code), Q3)
        pdf = report_pdf(f)
    fills = page_fill(pdf)
    thin = [(n, f"{fill:.0%}") for n, fill in enumerate(fills, 1) if fill < 0.25]
    assert not thin, f"{code}: pages under a quarter full {thin} of {len(fills)}"
    texts = page_texts(pdf)
    # No heading is left at the foot of a page: each section title is followed on its page by what it introduces.
    for text in texts:
        assert not re.search(r"[一二三四五六七八九十]+、[^、]{2,10}$", text[-40:].split("第")[0]), text[-60:]


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
