"""The public face of the registry (公告公示, no login): an index of published notices by county and year with a
search, each notice as HTML and as the A4 PDF it was published with.

Only a notice's frozen snapshot is shown, through ``documents.table``/``header`` (the guidance's fields, nothing
else); URLs name a notice by its random public number, never by a database id; pages are cacheable by browsers and
proxies (``Cache-Control: public``); requests are rate-limited per client address.

Rate limiting: Flask-Limiter's storages are memory, Redis, Memcached and MongoDB. Memory counts per process (with
gunicorn's two workers a client would get twice the limit, and a new count after every restart), and Redis is only
there when an office sets ``REDIS_URL``. The login throttle keeps its counters in the database for the same reason,
and so does this: one row per (address, minute), incremented by a single INSERT … ON CONFLICT DO UPDATE …
RETURNING, which both engines run atomically (PostgreSQL locks the row; SQLite takes its write lock at BEGIN
IMMEDIATE), so every worker process and host sees one exact count. Rows of past minutes are deleted as new minutes
start. ``DISCLOSURE_RATE_LIMIT`` requests per minute per address (0 turns it off).
"""

import time
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, render_template, request
from sqlalchemy.dialects import postgresql, sqlite

from registry.disclosure import documents, queries
from registry.disclosure.models import NoticeState, PublicHit
from registry.kernel.database import writing
from registry.kernel.errors import render_error
from registry.kernel.extensions import db
from registry.kernel.forms import has_control_characters
from registry.kernel.web import paginate
from registry.permissions import public

bp = Blueprint("gongshi", __name__, url_prefix="/gongshi")


def cacheable(view):
    """Mark a public view whose successful answers may be stored by browsers and proxies (registry/security.py
    keeps its ``Cache-Control`` instead of ``no-store``, and sends no session cookie with it)."""
    view.cache_public = True
    return view


def _cache(response, max_age: int | None = None):
    max_age = current_app.config["DISCLOSURE_CACHE_SECONDS"] if max_age is None else max_age
    response.headers["Cache-Control"] = f"public, max-age={int(max_age)}"
    return response


def count_hit(ip: str, now: float | None = None) -> int:
    """Count one request of ``ip`` in the current minute; return the minute's count so far (this one included)."""
    minute = int((time.time() if now is None else now) // 60)
    db.session.commit()  # end any read transaction: the counter's write must begin its own (IMMEDIATE on SQLite)
    with writing():
        insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(PublicHit)
            .values(ip=ip[:64], minute=minute, hits=1)
            .on_conflict_do_update(index_elements=["ip", "minute"], set_={"hits": PublicHit.hits + 1})
            .returning(PublicHit.hits)
        )
        hits = db.session.execute(stmt).scalar_one()
        if hits == 1:
            db.session.execute(sa.delete(PublicHit).where(PublicHit.minute < minute - 1))
        db.session.commit()
    return hits


@bp.before_request
def limit_rate():
    limit = int(current_app.config["DISCLOSURE_RATE_LIMIT"])
    if limit <= 0:
        return None
    hits = count_hit(request.remote_addr or "")
    if hits <= limit:
        return None
    response = current_app.make_response(render_error(429, "访问过于频繁，请一分钟后再试。"))
    response.headers["Retry-After"] = str(60 - int(time.time()) % 60)
    return response


@bp.route("/")
@public
@cacheable
def index():
    # A search term with control characters (NUL, which PostgreSQL cannot even compare) searches nothing.
    args = {k: request.args.get(k, "").strip()[:100] for k in ("county", "year", "q")}
    args = {k: "" if has_control_characters(v) else v for k, v in args.items()}
    page = paginate(queries.public_notices(args), args=args)
    response = Response(
        render_template(
            "disclosure/public/index.html",
            page=page,
            args=args,
            counties=queries.public_counties(),
            years=queries.public_years(),
        )
    )
    return _cache(response)


def _notice_or_404(public_no: str):
    notice = queries.public_notice(public_no)
    if notice is None:
        abort(404)
    return notice


@bp.route("/<public_no>")
@public
@cacheable
def notice(public_no):
    notice = _notice_or_404(public_no)
    snap = notice.snapshot
    response = Response(
        render_template(
            "disclosure/public/notice.html",
            notice=notice,
            withdrawn=notice.state is NoticeState.WITHDRAWN,
            h=documents.header(snap),
            t=documents.table(snap),
        )
    )
    return _cache(response)


@bp.route("/<public_no>.pdf")
@public
@cacheable
def notice_pdf(public_no):
    """The PDF rendered at publication (never re-rendered: what was posted is what is downloaded)."""
    notice = _notice_or_404(public_no)
    if notice.state is not NoticeState.PUBLISHED or not notice.pdf:
        abort(404)
    name = f"{notice.snapshot['county']}-{notice.year}-{documents.header(notice.snapshot)['type_label']}公告"
    response = Response(notice.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f"inline; filename=\"notice-{notice.public_no}.pdf\"; filename*=UTF-8''{quote(name)}.pdf"
    )
    return _cache(response)
