"""Pages of a quarterly report as a director turns them: what WeasyPrint laid out on each page, and the faults a
director would not sign unchanged (issue 24, section 3).

``report_pages(html)`` lays the report out exactly as ``pdf.render_pdf`` does (same stylesheet, fonts and
fetcher) without writing the PDF, and describes each page; ``faults(pages)`` names, per page:
- a page under a quarter full (its body's lowest line or cell above the first quarter of the area between the
  margins), the cover and the last page included;
- a heading, a table caption or a lead-in line left at the foot of a page (the last line on the page is one);
- a table split so that fewer than ``MIN_ROWS_APART`` of its body rows stand on one side of the break (its last
  row alone on the next page), or a small table (at most ``SMALL_TABLE`` body rows) split at all.
``tests/test_report_pages.py`` checks a few demo reports; ``flask reports check-pages`` checks any number.
"""

from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from registry.reports import pdf

#: A page whose body reaches less far down than this share of the area between the margins is near empty.
MIN_FILL = 0.25
#: A table split between pages keeps at least this many body rows on each side (fewer when it has fewer rows).
MIN_ROWS_APART = 2
#: A table of at most this many body rows is kept whole.
SMALL_TABLE = 6
#: Elements that introduce what follows them and must not end a page.
_LEADS = {"h1", "h2", "h3", "h4", "caption"}


@dataclass
class Page:
    number: int
    #: How far down the body's content reaches, as a share of the area between the margins.
    fill: float
    #: The text of the page's last line and what holds it ("h2", "caption", ".lead", "td"...).
    last_text: str = ""
    last_kind: str = ""
    #: Per table on this page (by its caption or first header, and an id): body rows on this page.
    tables: dict = field(default_factory=dict)


def _classes(element) -> set[str]:
    return set((element.get("class") or "").split()) if element is not None else set()


def _text(box) -> str:
    return "".join(getattr(b, "text", "") for b in _descendants(box)).strip()


def _descendants(box):
    yield box
    for child in getattr(box, "children", ()):
        yield from _descendants(child)


def _table_name(element) -> str:
    caption = element.find(".//caption") if hasattr(element, "find") else None
    if caption is not None:
        return "".join(caption.itertext()).strip()[:40]
    th = element.find(".//th") if hasattr(element, "find") else None
    return ("".join(th.itertext()).strip() if th is not None else "表格")[:40]


def _describe(number: int, page_box) -> Page:
    top = page_box.content_box_y()
    height = page_box.height
    bottom = top
    last_line, last_chain = None, ()
    tables: dict = {}

    def walk(box, chain):
        nonlocal bottom, last_line, last_chain
        kind = type(box).__name__
        if kind == "MarginBox":
            return
        element = getattr(box, "element", None)
        if element is not None and "running" in _classes(element):
            return
        if kind == "TableBox":
            rows = sum(
                1
                for group in box.children
                if getattr(group, "element_tag", None) == "tbody"
                for row in group.children
                if type(row).__name__ == "TableRowBox"
            )
            key = (id(element), _table_name(element))
            tables[key] = tables.get(key, 0) + rows
        if kind in ("LineBox", "TableCellBox") or "Replaced" in kind:
            if kind != "LineBox" or _text(box):
                bottom = max(bottom, box.border_box_y() + box.border_height())
            if kind == "LineBox" and _text(box):
                last_line, last_chain = box, chain
            if kind == "LineBox" or "Replaced" in kind:
                if "Replaced" in kind:
                    last_line, last_chain = box, chain
                return
        for child in getattr(box, "children", ()):
            walk(child, chain + ((box.element_tag, _classes(element)),) if element is not None else chain)

    walk(page_box, ())
    kind = ""
    for tag, classes in reversed(last_chain):
        if tag in _LEADS or "lead" in classes:
            kind = tag if tag in _LEADS else ".lead"
            break
    if not kind and last_chain:
        kind = last_chain[-1][0]
    return Page(
        number=number,
        fill=max(0.0, min(1.0, (bottom - top) / height)),
        last_text=_text(last_line)[-40:] if last_line is not None else "",
        last_kind=kind,
        tables=tables,
    )


def report_pages(html: str, static_dir: str | None = None) -> list[Page]:
    """The pages of the report ``html`` as ``pdf.render_pdf`` lays them out."""
    weasyprint, _, _ = pdf._weasyprint()
    static_dir = static_dir or current_app.static_folder
    fonts, css = pdf._resources(static_dir)
    document = weasyprint.HTML(
        string=html, base_url=Path(static_dir).as_uri() + "/", url_fetcher=pdf.static_only_fetcher(static_dir)
    ).render(stylesheets=[css], font_config=fonts)
    return [_describe(n, p._page_box) for n, p in enumerate(document.pages, 1)]


def faults(pages: list[Page]) -> list[str]:
    """What a director would not sign unchanged, one line per fault, in page order (empty when none)."""
    found = []
    totals: dict = {}
    for page in pages:
        for key, rows in page.tables.items():
            totals.setdefault(key, []).append((page.number, rows))
    for page in pages:
        if page.fill < MIN_FILL:
            found.append(f"第 {page.number} 页不足四分之一（{page.fill:.0%}）")
        if page.number < len(pages) and page.last_kind in _LEADS | {".lead"}:
            found.append(f"第 {page.number} 页页脚处留下标题或表题：{page.last_text}")
    for (_, name), spread in totals.items():
        if len(spread) < 2:
            continue
        total = sum(rows for _, rows in spread)
        if total <= SMALL_TABLE:
            found.append(f"第 {spread[0][0]} 页起的小表格「{name}」（{total} 行）被分在 {len(spread)} 页")
            continue
        for number, rows in spread:
            if rows < MIN_ROWS_APART:
                found.append(f"第 {number} 页只有表格「{name}」的 {rows} 行（共 {total} 行）")
    return sorted(found, key=lambda s: int(s.split(" ")[1]))
