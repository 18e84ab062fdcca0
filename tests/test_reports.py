"""Quarterly figures, dashboard, PDF report, narrative, batch CLI and the renderer's safety."""

import io
import re
import zipfile
from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Agreement, Indicator
from registry.agreements.services import create_agreement, set_targets
from registry.counties.models import Unit
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.projects.models import FundStage, Project
from registry.reports.documents import report_html, report_pdf
from registry.reports.models import QuarterNarrative
from registry.reports.pdf import render_pdf
from registry.reports.queries import quarter_figures
from tests.factories import ID_A, make_pairing, make_placement, make_project, make_transaction

pypdf = pytest.importorskip("pypdf")


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def pdf_fonts(data: bytes) -> set[str]:
    """Names of the fonts whose glyphs are embedded in the PDF (a font file in its descriptor)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    fonts = set()
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = descendant["/FontDescriptor"].get_object()
            if any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                fonts.add(str(font["/BaseFont"]))
    return fonts


def table_rows(html: str, css_class: str) -> list[list[str]]:
    """The body rows of the page's tables of a class, as lists of cell texts without spaces."""
    rows = []
    for table in re.findall(rf'<table class="[^"]*\b{css_class}\b[^"]*">(.*?)</table>', html, re.S):
        body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
            cells = [compact(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            rows.append([c.replace("其中：", "") for c in cells])
    return rows


def compact(text: str) -> str:
    """PDF text without the spaces and line breaks layout puts between glyphs."""
    return re.sub(r"\s+", "", text)


def targets(world, values: dict[str, int]):
    agreement = db.session.get(Agreement, world.agreement_zc)
    by_code = {i.code: i.id for i in db.session.scalars(sa.select(Indicator))}
    set_targets(agreement, db.session.get(Unit, world.zhaojue), {by_code[k]: v for k, v in values.items()}, actor=None)


@pytest.fixture
def richer(app, world):
    """The world plus targets, a second quarter's money and placements, and Zhaojue's earlier Guangdong partner."""
    with app.app_context():
        targets(world, {"fiscal_funds": 400_000_00, "labour_total": 4, "consumption": 10_000_000})
        zhaojue = db.session.get(Unit, world.zhaojue)
        shunde = db.session.get(Unit, world.shunde)
        from registry.pairings.models import Pairing, Programme

        yc = db.session.get(Programme, world.yc)
        make_pairing(shunde, zhaojue, yc, valid_from=date(2016, 8, 1), valid_to=date(2021, 3, 31))
        project = db.session.get(Project, world.project_a)
        make_transaction(project, amount_fen=50_000_00, on=date(2024, 7, 10))
        make_transaction(project, stage=FundStage.DISBURSED, amount_fen=30_000_00, on=date(2024, 8, 1))
        make_placement(zhaojue, id_number="513431198807070014", person_name="阿苦", start_date=date(2024, 8, 1))
        # The same person again in the same quarter: still one person.
        make_placement(zhaojue, id_number="513431198807070014", person_name="阿苦", start_date=date(2024, 9, 1),
                       employer="慈溪某电器厂")  # fmt: skip
        assert db.session.scalar(sa.select(Pairing).where(Pairing.id == world.a)) is not None
        db.session.commit()
    return world


def test_figures_quarter_year_to_date_target_and_last_year(app, richer):
    with app.app_context():
        zhaojue = db.session.get(Unit, richer.zhaojue)
        f = quarter_figures(zhaojue, Quarter.parse("2024Q3"))
        (agreement,) = f.agreements
        rows = {r.code: r for r in agreement.rows}
        fiscal = rows["fiscal_funds"]
        # 100,000 元 arrived in April (Q2) and 50,000 元 in July (Q3).
        assert (fiscal.target, fiscal.quarter, fiscal.year_to_date) == (400_000_00, 50_000_00, 150_000_00)
        assert str(fiscal.rate) == "37.50"
        # 浙川 ran in 2023 (no agreement is needed), with no money in Zhaojue then: 上年同期 is a true 0.
        assert fiscal.last_year == 0 and not fiscal.no_last_year
        # Before April 2021 浙川 did not exist: 上年同期 of 2021Q2 is empty and says why.
        create_agreement({"programme_id": richer.zc, "year": 2021, "title": "2021年浙川协议"}, actor=None)
        (early,) = quarter_figures(zhaojue, Quarter.parse("2021Q2")).agreements
        assert all(r.last_year is None and "上年同期尚未开展" in r.no_last_year for r in early.rows)
        # 项目数: project_a was approved on 15 March 2024, so it counts in Q1 and in every year to date, not in Q2.
        q1 = {r.code: r for r in quarter_figures(zhaojue, Quarter.parse("2024Q1")).agreements[0].rows}
        assert (q1["project_count"].quarter, q1["project_count"].year_to_date) == (1, 1)
        assert (rows["project_count"].quarter, rows["project_count"].year_to_date) == (0, 1)
        labour = rows["labour_total"]
        # 吉克阿呷 (from March, still in work) and 阿苦 (two placements, one person).
        assert (labour.quarter, labour.year_to_date) == (2, 2)
        assert f.people_year_to_date == 2 and f.lifted_year_to_date == 2
        assert f.funds_total.arrived == 150_000_00 and f.funds_total.disbursed == 30_000_00
        assert f.funds_total.quarter_disbursed == 30_000_00 and str(f.funds_total.usage) == "20.00"
        assert dict(f.monthly_disbursed)["8月"] == 30_000_00 and len(f.monthly_disbursed) == 9
        (project,) = f.projects.projects
        assert project.total.year.arrived == 150_000_00 and project.total.to_date.arrived == 150_000_00
        assert f.projects.total.year == f.funds.total
        assert sum(c.year_to_date for c in f.channels) == 5_000_000 == rows["consumption"].year_to_date
        assert f.postings[0].in_post_at_end == 1 and f.roster[0].name == "陈明"


def test_partner_shown_for_the_quarter(app, richer):
    with app.app_context():
        zhaojue = db.session.get(Unit, richer.zhaojue)
        before = quarter_figures(zhaojue, Quarter.parse("2019Q2"))
        after = quarter_figures(zhaojue, Quarter.parse("2024Q3"))
        assert [p.east for p in before.partners] == ["佛山市顺德区"]
        assert [p.east for p in after.partners] == ["宁波市余姚市"]
        assert "粤川" in before.partners[0].programme and "浙川" in after.partners[0].programme
        for f, shown, hidden in ((before, "顺德区", "余姚市"), (after, "余姚市", "顺德区")):
            text = compact(pdf_text(report_pdf(f)))
            assert shown in text and hidden not in text


def test_pdf_numbers_equal_dashboard_embedded_cjk_font_no_identity_numbers(app, richer, as_user):
    client = as_user("county")
    page = client.get(f"/reports/{richer.zhaojue}/2024Q3")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    response = client.get(f"/reports/{richer.zhaojue}/2024Q3.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "filename*=UTF-8''513431-" in response.headers["Content-Disposition"]
    data = response.data
    text = compact(pdf_text(data))
    # Every row of the dashboard's summary and fund tables reads the same, cell by cell, in the PDF.
    rows = table_rows(html, "summary") + table_rows(html, "funds")
    # Eleven built-in indicators (both directions of 人才交流); one fund source, the total and 其中：往年项目.
    assert len(rows) == 11 + 3
    for cells in rows:
        assert "".join(cells) in text, cells
    fiscal = next(cells for cells in rows if cells[0] == "财政援助资金")
    assert fiscal[2:6] == ["40.00", "5.00", "15.00", "37.50%"]
    for heading in ("指标", "年度目标", "本季度", "年累计", "完成率", "上年同期", "填报人", "审核人", "单位盖章"):
        assert heading in text
    assert re.search(r"第1页/共\d+页", text)
    assert any("NotoSansCJK" in font.replace("-", "") for font in pdf_fonts(data)), pdf_fonts(data)
    assert ID_A not in text and "5134**" not in text and "513431198807070014" not in text
    assert not re.search(r"\d{17}[\dX]", text)


def test_hostile_content_is_neither_fetched_nor_injected(app, world):
    hostile = '<img src="file:///etc/passwd"><link rel="attachment" href="file:///etc/hostname">'
    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        from registry.pairings.models import Pairing

        pairing = db.session.get(Pairing, world.a)
        make_project(zhaojue, pairing, name=f'恶意{hostile}<img src="http://127.0.0.1:9/x.png">', code="EVIL-1")
        from registry.reports.services import save_narrative

        save_narrative(zhaojue, Quarter.parse("2024Q2"), {
            "highlights": '<script>alert(1)</script><img src="https://evil.example/a.png">',
            "problems": '<style>@import url("http://127.0.0.1:9/x.css");</style>', "next_steps": hostile,
        }, actor=None)  # fmt: skip
        db.session.commit()
        f = quarter_figures(zhaojue, Quarter.parse("2024Q2"))
        html = report_html(f)
        assert "<img src=" not in html and "<script>" not in html and "&lt;script&gt;" in html
        seen = []
        data = render_pdf(html, seen=seen)
        assert seen == [], seen  # escaped by the templates: nothing even asks the fetcher
        assert b"/EmbeddedFiles" not in data and b"/FileAttachment" not in data
        text = compact(pdf_text(data))
        assert "<script>alert(1)</script>" in text and 'src="file:///etc/passwd"' in text
        # Were markup ever to slip through, the renderer itself fetches nothing outside static/.
        seen = []
        raw = (
            f'<p>原样</p>{hostile}<img src="http://127.0.0.1:9/x.png"><img src="data:image/png;base64,iVBORw0KGgo=">'
            '<link rel="stylesheet" href="file:///etc/passwd"><img src="css/report.css">'
        )
        data = render_pdf(raw, seen=seen)
        assert {"file:///etc/passwd", "file:///etc/hostname", "http://127.0.0.1:9/x.png"} <= set(seen)
        assert b"/EmbeddedFiles" not in data and b"root:" not in data
        assert "原样" in pdf_text(data)


def test_fetcher_refuses_everything_outside_static(app, tmp_path):
    from registry.reports.pdf import BlockedURL, static_only_fetcher

    static = tmp_path / "static"
    static.mkdir()
    (static / "ok.css").write_text("p{}")
    (tmp_path / "secret.txt").write_text("secret")
    (static / "link.css").symlink_to(tmp_path / "secret.txt")
    fetcher = static_only_fetcher(str(static))
    assert fetcher.fetch((static / "ok.css").as_uri()) is not None
    for url in (
        (tmp_path / "secret.txt").as_uri(),
        (static / "link.css").as_uri(),
        (static / ".." / "secret.txt").as_uri(),
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.png",
        "https://example.com/a.css",
        "data:text/css,p{}",
        "ftp://example.com/x",
    ):
        with pytest.raises(BlockedURL):
            fetcher.fetch(url)


def test_narrative_saved_audited_and_printed(app, world, as_user):
    client = as_user("county")
    url = f"/reports/{world.zhaojue}/2024Q2/narrative"
    data = {"highlights": "建成帮扶车间 3 个", "problems": "", "next_steps": "扩大劳务输出"}
    # The page posts version 0 for "none written yet"; a post without any version is refused as stale.
    assert client.post(url, data=data).status_code == 409
    response = client.post(url, data=data | {"version": 0})
    assert response.status_code == 302
    with app.app_context():
        row = db.session.scalar(sa.select(QuarterNarrative))
        assert (row.year, row.quarter, row.highlights) == (2024, 2, "建成帮扶车间 3 个")
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity_type == "quarter_narratives"))
        assert event.changes["highlights"] == ["", "建成帮扶车间 3 个"]
        version = row.version_id
    text = compact(pdf_text(client.get(f"/reports/{world.zhaojue}/2024Q2.pdf").data))
    assert "建成帮扶车间3个" in text and "扩大劳务输出" in text
    # Too long: a Chinese message and nothing written.
    response = client.post(url, data={"highlights": "长" * 5001, "version": version})
    assert response.status_code == 400 and "不能超过 5000 字" in response.get_data(as_text=True)
    # An edit made on an older version is refused; so is a first save from a page opened before the first one.
    client.post(url, data={"highlights": "第二版", "version": version})
    assert client.post(url, data={"highlights": "旧页面", "version": version}).status_code == 409
    assert client.post(url, data={"highlights": "另一人的初稿", "version": 0}).status_code == 409
    assert 'name="version" type="hidden" value="0"' in client.get(f"/reports/{world.zhaojue}/2024Q1").get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(sa.select(QuarterNarrative.highlights)) == "第二版"


@pytest.mark.parametrize("quarter", ["2024Q5", "abc", "2009Q4", f"{date.today().year + 1}Q1"])
def test_bad_quarter_in_url_is_a_chinese_404(world, as_user, quarter):
    response = as_user("province").get(f"/reports/{world.zhaojue}/{quarter}")
    assert response.status_code == 404
    assert re.search("季度|没有数据|尚未开始", response.get_data(as_text=True))


def test_scope_liaison_and_county(world, as_user):
    liaison, county = as_user("liaison"), as_user("county")
    assert liaison.get(f"/reports/{world.zhaojue}/2024Q2").status_code == 200
    assert liaison.get(f"/reports/{world.cangxi}/2019Q2").status_code == 404
    # A Zhejiang liaison has no pairing with Zhaojue before April 2021.
    assert liaison.get(f"/reports/{world.zhaojue}/2020Q2").status_code == 404
    assert county.get(f"/reports/{world.sichuan}/2024Q2").status_code == 404
    index = liaison.get("/reports/?quarter=2024Q2").get_data(as_text=True)
    assert "昭觉县" in index and "苍溪县" not in index


def test_province_dashboard_lists_paired_counties(world, as_user):
    page = as_user("province").get(f"/reports/{world.sichuan}/2024Q2").get_data(as_text=True)
    # Under 1 亿元 in the small world: the province's tables stay in 万元 rather than print 0.00 亿元.
    assert "各结对县情况" in page and "昭觉县" in page and "单位：万元" in page and "0.00 亿元" not in page


def test_prefecture_report_has_the_agreement_of_its_counties(app, world):
    with app.app_context():
        f = quarter_figures(db.session.get(Unit, world.liangshan), Quarter.parse("2024Q2"))
        assert [a.title for a in f.agreements] == ["2024年浙川协议"]
        assert [c.name for c in f.counties] == ["昭觉县"] and f.level == "prefecture"


def test_liaison_figures_count_only_their_own_pairings(app, world, as_user):
    """A liaison of one Zhejiang city sees the province summary limited to that city's pairings."""
    with app.app_context():
        from registry.auth.models import Role
        from registry.pairings.models import Programme
        from tests.factories import make_user

        butuo, cixi = db.session.get(Unit, world.butuo), db.session.get(Unit, world.cixi)
        pairing = make_pairing(cixi, butuo, db.session.get(Programme, world.zc))
        make_project(butuo, pairing, name="布拖县慈溪帮扶车间", code="BT-1")
        make_user(Role.LIAISON, db.session.get(Unit, world.yuyao), username="yuyao")
        db.session.commit()
    yuyao = as_user("yuyao")
    for unit in (world.sichuan, world.liangshan):
        page = yuyao.get(f"/reports/{unit}/2024Q2").get_data(as_text=True)
        assert "昭觉县" in page and "布拖县" not in page and "慈溪" not in page
        assert "仅含" in page and "余姚市的结对关系" in page
    assert yuyao.get(f"/reports/{world.butuo}/2024Q2").status_code == 404
    # The province-wide Zhejiang liaison sees both Zhejiang pairings.
    page = as_user("liaison").get(f"/reports/{world.liangshan}/2024Q2").get_data(as_text=True)
    assert "昭觉县" in page and "布拖县" in page


def test_cli_renders_a_list_and_all_into_zip_and_folder(app, world, runner, tmp_path):
    out = tmp_path / "q.zip"
    result = runner.invoke(
        args=["reports", "render", "--quarter", "2024Q2", "--all", "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(out).namelist()
    assert names == ["513431-昭觉县-2024Q2-东西部协作季度报告.pdf"]
    folder = tmp_path / "dir"
    result = runner.invoke(
        args=["reports", "render", "--quarter", "2019年第2季度", "--unit", "510824", "--unit", "510000",
              "--out", str(folder), "--workers", "1"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "510000-四川省-2019Q2-东西部协作季度报告.pdf",
        "510824-苍溪县-2019Q2-东西部协作季度报告.pdf",
    ]
    # A liaison's batch holds only their pairings' reports.
    result = runner.invoke(
        args=["reports", "render", "--quarter", "2019Q2", "--unit", "510824", "--out", str(tmp_path / "x"),
              "--user", "liaison"]
    )  # fmt: skip
    assert result.exit_code != 0 and "不在用户 liaison 的范围内" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quarter", "2024Q9", "--all"], "格式不正确"),
        (["--quarter", "2024Q2"], "--unit"),
        (["--quarter", "2024Q2", "--unit", "999999"], "没有代码为 999999"),
        (["--quarter", "2024Q2", "--all", "--user", "nobody"], "不存在"),
    ],
)
def test_cli_bad_input(world, runner, tmp_path, args, message):
    result = runner.invoke(args=["reports", "render", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "o").exists()


def test_cli_writes_nothing_when_a_report_fails_unless_asked(app, world, runner, tmp_path, monkeypatch):
    from registry.reports import batch

    real = batch.render_task

    def flaky(task, app=None):
        if task.unit_id == world.cangxi:
            return batch.Outcome(task.unit_id, "", 0.0, 0.0, "排版失败")
        return real(task, app)

    monkeypatch.setattr(batch, "render_task", flaky)
    args = ["reports", "render", "--quarter", "2019Q2", "--unit", "510824", "--unit", "510000", "--workers", "1"]
    result = runner.invoke(args=[*args, "--out", str(tmp_path / "a.zip")])
    assert result.exit_code != 0 and "苍溪县：排版失败" in result.output and "未写出任何文件" in result.output
    assert not list(tmp_path.iterdir())
    result = runner.invoke(args=[*args, "--out", str(tmp_path / "b.zip"), "--keep-partial"])
    assert result.exit_code != 0 and "写出其余 1 份" in result.output
    assert zipfile.ZipFile(tmp_path / "b.zip").namelist() == ["510000-四川省-2019Q2-东西部协作季度报告.pdf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zip"]  # no .part left behind


def test_batch_with_worker_processes(app, world, tmp_path):
    """Two spawned workers build their own app from the parent's settings and render the same report."""
    from registry.reports import batch, workers

    with app.app_context():
        folder = tmp_path / "w"
        folder.mkdir()
        tasks = [batch.Task(world.zhaojue, "2024Q2", None, str(folder)),
                 batch.Task(world.cangxi, "2019Q2", None, str(folder))]  # fmt: skip
        outcomes = batch.render_many(tasks, workers=2, config=workers.worker_config(app))
    assert sorted(o.error for o in outcomes) == ["", ""]
    assert len(list(folder.iterdir())) == 2
    # A unit that does not exist fails alone, with its reason.
    with app.app_context():
        tasks = [batch.Task(999_999, "2024Q2", None, str(folder)), tasks[0]]
        outcomes = batch.render_many(tasks, workers=2, config=workers.worker_config(app))
    assert sorted(o.error for o in outcomes)[0] == "" and "不存在" in sorted(o.error for o in outcomes)[1]


def test_county_page_links_the_year_quarters(world, as_user):
    page = as_user("county").get(f"/units/{world.zhaojue}?year=2024").get_data(as_text=True)
    for quarter in ("2024Q1", "2024Q2", "2024Q3", "2024Q4"):
        assert f"/reports/{world.zhaojue}/{quarter}.pdf" in page
    # The liaison's pairing with Zhaojue began in April 2021: no 2020 reports for them.
    page = as_user("liaison").get(f"/units/{world.zhaojue}?year=2020").get_data(as_text=True)
    assert f"/reports/{world.zhaojue}/2020Q" not in page


def test_one_display_rule_for_money_counts_and_part_labels():
    from registry.kernel.money import count, money, money_unit, part_label

    wan_1, yi_1 = 10_000 * 100, 100_000_000 * 100
    assert money_unit("county", 900 * yi_1) == money_unit("prefecture", 900 * yi_1) == "万元"
    assert money_unit("province", 37 * wan_1) == "万元"  # never 0.0037 亿元, never 0.00 亿元
    assert money_unit("province", None, 0, 137 * wan_1, yi_1) == "亿元" and money_unit("province") == "万元"
    # A small line beside big totals would read 0.00 亿元: the whole table stays in 万元.
    assert money_unit("province", 30 * wan_1, 7 * yi_1) == "万元"
    assert money(800 * wan_1) == "800.00" and money(52_853_834_300) == "52,853.83"
    assert money(75_269_045_500, "亿元") == "7.53" and money(None) == "—"
    assert count(12345) == "12,345" and count(7) == "7" and count(None) == "—"
    for name in ("其中脱贫劳动力", "脱贫劳动力", "其中：脱贫劳动力"):
        assert part_label(name) == "其中：脱贫劳动力"
    with pytest.raises(ValueError):
        money_unit("township", 1)
    with pytest.raises(ValueError):
        money(1, "元")


def test_latest_quarter_is_the_last_one_ended():
    from registry.reports.services import latest_quarter

    assert str(latest_quarter(date(2025, 2, 1))) == "2024Q4"
    assert str(latest_quarter(date(2026, 11, 23))) == "2026Q3"
    assert str(latest_quarter(date(2026, 4, 1))) == "2026Q1"
