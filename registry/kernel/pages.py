"""The stream kit: a record stream's standard pages, declared once and registered on the stream's blueprint.

A stream (placements, purchases, exchanges, projects, agreements) declares what is its own: the model, the form
and its choices, the service calls, filters, sort table, export columns, import steps and rules, and its labels.
``StreamPages`` registers the routes every stream used to write out line for line, under the same URLs and
endpoint names:

====================  ===============================  =============================================
endpoint              URL (below the stream's root)    declared by
====================  ===============================  =============================================
``.index``            ``/``                            ``listing`` (filters, sort, page, header)
``.export``           ``/export.<xlsx|csv>``           ``export`` (the list's filters, every page)
``.detail``           ``/<int:{name}_id>``             ``detail`` (the record and its 变更记录)
``.create``           ``/new``                         ``forms`` (the form, its choices, the services)
``.edit``             ``/<int:{name}_id>/edit``        ``forms``
``.template``         ``/template.xlsx``               ``importing`` (columns and rules)
``.import_``          ``/import``                      ``importing`` (the steps)
====================  ===============================  =============================================

Every route passes the gate the stream hands in (the kernel imports none): its permission decorator
(``requires``), its scoped load (``get_visible_or_404``: a record out of scope is 404) and, before an edit is
shown, ``may_write`` (403). The writes themselves are the services' (``authorize_write``, the audit trail);
``registry.kernel.web.save`` makes the request's one commit, flashes the message and redirects, or shows the
service's refusal on the form. The evidence panel and the history are macros of the detail page
(``_macros/evidence.html``, ``_macros/audit.html``).

Templates are the stream's own, by name: ``<blueprint>/index.html``, ``detail.html``, ``form.html``. A page that
is not standard (a workflow, a dashboard) stays a view of the stream's, next to the kit's.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from registry.kernel.audit.queries import history_of
from registry.kernel.exports import background_export, stream_batches, stream_table
from registry.kernel.forms import preselect_only_county
from registry.kernel.transfer.forms import import_page, template_download
from registry.kernel.web import paginate, save

#: The export route's file kinds.
EXPORT_KINDS = "<any(xlsx, csv):kind>"


class Gate(Protocol):
    """What the kit asks of the permission gate (``registry.permissions`` is one)."""

    def requires(self, permission: str) -> Callable: ...

    def get_visible_or_404(self, model, ident, where=None, *, user=None): ...

    def may_write(self, user, record) -> bool: ...


@dataclass
class Listing:
    """A stream's list: what its filters, header and sort are (see ``StreamPages.listing``)."""

    filters: tuple[str, ...]
    query: Callable[[dict, Any], Any]
    sorting: Callable[[], tuple[str, list]] | None
    header: Callable[[dict, Any], tuple[int | None, dict]] | None = None
    load: tuple = ()
    then: tuple = ()
    joins: dict = field(default_factory=dict)
    rows: Callable[[list], dict] | None = None


class StreamPages:
    """The standard pages of one stream on its blueprint ``bp``.

    ``model`` is the stream's record class, ``name`` the record's name in URLs and templates (``exchange``:
    ``/<int:exchange_id>``, ``exchange=`` in ``detail.html`` and ``form.html``), ``label`` its title (the sheet
    and file names of exports and templates, the import page's way back), ``edit`` the permission its writes need.
    ``root`` is the URL the pages hang below when the blueprint has no prefix of its own; ``where`` the read rule
    when it is not the model's declared scope (a function of the user)."""

    def __init__(
        self,
        bp: Blueprint,
        *,
        gate: Gate,
        model,
        name: str,
        label: str,
        edit: str,
        view: str = "records.view",
        root: str = "",
        where: Callable | None = None,
    ):
        self.bp, self.gate, self.model, self.name, self.label = bp, gate, model, name, label
        self.edit_permission, self.view_permission, self.root, self.where = edit, view, root, where
        self.key = f"{name}_id"
        self.list: Listing | None = None
        #: The import steps of each import page, by endpoint (read at each request).
        self.steps: dict[str, Callable] = {}

    # ---- helpers a stream's own views use too -------------------------------------------------------------------

    def get(self, ident: int):
        """The record with this id if the user may see it; 404 otherwise (out of scope reads as absent)."""
        where = self.where(current_user) if self.where else None
        return self.gate.get_visible_or_404(self.model, ident, where)

    def args(self) -> dict:
        """The list's filter arguments from the URL, stripped, every key present (empty when not given)."""
        return {k: request.args.get(k, "").strip() for k in self.list.filters}

    def detail_url(self, record) -> str:
        return url_for(".detail", **{self.key: record.id})

    def _route(self, path: str, endpoint: str, view, permission: str, methods=("GET",), root=None) -> None:
        # The view belongs to the stream's module, as Flask's View.as_view makes a class's view its module's: tests
        # and tools that find a view's code by its module find the stream's declaration.
        view.__name__, view.__module__, view.__qualname__ = endpoint, self.bp.import_name, endpoint
        self.bp.add_url_rule(
            (self.root if root is None else root) + path,
            endpoint,
            self.gate.requires(permission)(view),
            methods=list(methods),
        )

    # ---- the list and its export -------------------------------------------------------------------------------

    def listing(
        self,
        *,
        filters: tuple[str, ...],
        query: Callable[[dict, Any], Any],
        sorting: Callable[[], tuple[str, list]] | None = None,
        header: Callable[[dict, Any], tuple[int | None, dict]] | None = None,
        load: tuple = (),
        then: tuple = (),
        joins: dict | None = None,
        rows: Callable[[list], dict] | None = None,
    ) -> None:
        """``.index``: the records ``query(args, user)`` selects (scope first, then the ``filters`` read from the
        URL), sorted by ``sorting()`` (the stream's call of ``web.sort_clause`` with its table; without it, in the
        query's own order and the list offers no sort), ``then`` as the
        last order terms, the rows' relations loaded with ``load``; a sort key in ``joins`` joins what it sorts
        by. ``header(args, stmt)`` gives the list's total when it knows it (else the page counts, bounded) and the
        template's other variables (totals, filter choices); ``rows(records)`` what the page's rows show beyond
        themselves (read for that page only, e.g. each asset's last 管护 check)."""
        self.list = Listing(filters, query, sorting, header, load, then, joins or {}, rows)

        def index():
            listing, args = self.list, self.args()
            stmt = listing.query(args, current_user)
            total, context = listing.header(args, stmt) if listing.header else (None, {})
            sort, order = listing.sorting() if listing.sorting else (None, [])
            join = listing.joins.get(sort.lstrip("-")) if sort else None
            if join is not None:
                stmt = join(stmt)
            page = paginate(
                stmt.options(*listing.load).order_by(*order, *listing.then),
                args={**args, "sort": sort} if sort else args,
                total=total,
            )
            if listing.rows is not None:
                context |= listing.rows(page.items)
            return render_template(f"{self.bp.name}/index.html", page=page, args=args, sort=sort, **context)

        self._route("/", "index", index, self.view_permission)

    def export(
        self,
        *,
        headers: list[str],
        batches: Callable | None = None,
        rows: Callable | None = None,
        label: str | None = None,
        widths: list[int] | None = None,
        full: Callable | None = None,
        path: str = "/export.",
        endpoint: str = "export",
    ) -> None:
        """``.export``: the list's filtered records, every page, as XLSX or CSV, named ``<label>-<today>``.

        ``batches(stmt, kind)`` writes them as read (plain rows in keyset batches, per-column converters), and
        above ``EXPORT_BACKGROUND_ROWS`` a background job makes the file (the stream's name is the job's);
        ``rows(stmt)`` instead streams finished rows in the request. ``full(stmt)`` decides (and records) an
        export of identity numbers in full: the job is told and ``batches`` gets ``reveal=``."""
        label = label or self.label

        def view(kind):
            args = self.args()
            stmt = self.list.query(args, current_user)
            name = f"{label}-{date.today().isoformat()}"
            if rows is not None:
                return stream_table(kind, headers, rows(stmt), name, title=label, widths=widths)
            reveal = full(stmt) if full else False
            job = background_export(self.bp.name, kind, args, stmt, user=current_user, full=reveal)
            if job is not None:
                return job
            made = batches(stmt, kind, reveal=reveal) if full else batches(stmt, kind)
            return stream_batches(kind, headers, made, name, title=label, widths=widths)

        self._route(path + EXPORT_KINDS, endpoint, view, self.view_permission)

    # ---- one record: its page, create and edit -----------------------------------------------------------------

    def detail(self, context: Callable[[Any], dict] | None = None) -> None:
        """``.detail``: the record and its 变更记录 (``history``), with ``context(record)``'s variables."""

        def view(**kwargs):
            record = self.get(kwargs[self.key])
            return self.render_detail(record, **(context(record) if context else {}))

        self._route(f"/<int:{self.key}>", "detail", view, self.view_permission)

    def render_detail(self, record, **context) -> str:
        return render_template(
            f"{self.bp.name}/detail.html", **{self.name: record}, history=history_of(record), **context
        )

    def forms(
        self,
        form,
        *,
        create: Callable,
        update: Callable,
        created,
        saved,
        choices: Callable | None = None,
        initial: Callable[[], dict] | None = None,
        data: Callable | None = None,
        check_write: bool = True,
    ) -> None:
        """``.create`` and ``.edit`` of the ``form`` class, rendered by ``<blueprint>/form.html``.

        ``choices(form)`` fills its select fields; ``initial()`` a new form's values; ``data(form)`` what the
        services get (default ``form.data``). ``create(data, actor=)`` and ``update(record, data, actor=,
        version=)`` are the services (the gate's write check and the audit are theirs); ``created`` and ``saved``
        the messages (``created`` may be a function of the new record). An edit is refused (403) before the form
        is shown when the gate's ``may_write`` says no, unless ``check_write`` is False (the service decides)."""
        data = data or (lambda f: f.data)

        def render(f, record):
            return render_template(f"{self.bp.name}/form.html", form=f, **{self.name: record})

        def create_view():
            f = form(data=initial() if initial and request.method == "GET" else None)
            if choices:
                choices(f)
            if request.method == "GET":
                preselect_only_county(f)
            if f.validate_on_submit():
                values = data(f)
                response = save(f, lambda: create(values, actor=current_user), created, self.detail_url)
                if response:
                    return response
            return render(f, None)

        def edit_view(**kwargs):
            record = self.get(kwargs[self.key])
            if check_write and not self.gate.may_write(current_user, record):
                abort(403)
            f = form(obj=record, data={"version": record.version_id} if request.method == "GET" else None)
            if choices:
                choices(f)
            if f.validate_on_submit():
                values = data(f)
                response = save(
                    f,
                    lambda: update(record, values, actor=current_user, version=f.version.data),
                    saved,
                    self.detail_url(record),
                )
                if response:
                    return response
            return render(f, record)

        self._route("/new", "create", create_view, self.edit_permission, methods=("GET", "POST"))
        self._route(f"/<int:{self.key}>/edit", "edit", edit_view, self.edit_permission, methods=("GET", "POST"))

    # ---- spreadsheets in ---------------------------------------------------------------------------------------

    def importing(
        self,
        *,
        steps: Callable,
        columns: Callable,
        rules: list[str],
        title: str,
        label: str | None = None,
        back_label: str | None = None,
        root: str | None = None,
        path: str = "",
        endpoints: tuple[str, str] = ("template", "import_"),
        permission: str | None = None,
        back: str | None = None,
    ) -> None:
        """The import template (``.template``: ``columns(user)`` with drop-downs, the ``rules`` in a 填表说明 sheet,
        named ``<label>-导入模板``) and the import page (``.import_``: upload, every row checked by ``steps`` first,
        all or nothing). A stream with a second kind of sheet names it by ``path`` below the root (or its own
        ``root``), its two ``endpoints`` and, when the way back is not the list, the ``back`` endpoint."""
        label, template_endpoint = label or self.label, endpoints[0]
        self.steps[endpoints[1]] = steps

        def template():
            return template_download(columns(current_user), label, rules)

        def import_():
            return import_page(
                self.steps[endpoints[1]],
                user=current_user,
                title=title,
                back_label=back_label or self.label,
                rules=rules,
                back=url_for(back) if back else None,
                template=url_for(f".{template_endpoint}"),
            )

        self._route(f"{path}/template.xlsx", template_endpoint, template, self.view_permission, root=root)
        self._route(
            f"{path}/import",
            endpoints[1],
            import_,
            permission or self.edit_permission,
            methods=("GET", "POST"),
            root=root,
        )
