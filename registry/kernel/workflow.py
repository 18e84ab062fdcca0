"""One workflow kit: a record type's states, the steps between them, who may take each, the 意见 a step requires,
its dated step row, its audit event and the hooks that later modules (to-dos, notifications) hang on every step.

A workflow is declared once, beside its model::

    WORKFLOW = Workflow(
        "problem", State, step=_step_row, describe=lambda problem, text: f"{text}：{problem.title}",
        transitions=[
            Transition("request", "申请销号", sources={State.IN_PROGRESS, State.RETURNED}, to=State.REQUESTED,
                       may=can_request, audit="request_close"),
            Transition("return", "退回", sources={State.REQUESTED}, to=State.RETURNED, may=can_close_any,
                       refusal="您不是……，不能退回。", opinion=Opinion("退回理由", limit=500, field="reason")),
        ],
    )

and a service takes a step with ``WORKFLOW.take(problem, "return", actor=user, opinion=reason)``. The kit asks, in
this order and before writing anything: who (the transition's predicate from ``registry/permissions.py``: False is
refused with its message; a gate that raises refuses by itself), the state (a step from any other state is refused
with the state's label), the 意见 (required, within its length). A refusal is a ``ServiceError`` (the workflow's
``refused`` class for who) with a Chinese message, and nothing has been written. A step taken moves the state,
writes the step row (the workflow's ``step`` factory: its date, actor, 意见), flushes and writes one audit event
(``{"state": [from, to]}`` and the 意见 under the workflow's ``audit_opinion``), then calls the hooks.

Hooks (``on_step``): callbacks per workflow and step. ``written`` hooks run inside the step's transaction with the
record, so what they write (a notification row) commits or rolls back with the step; ``committed`` hooks run once
the transaction has committed, with the plain ``StepEvent`` (for what leaves the database: a message queued for
delivery), never for a step rolled back (a refusal, a failed import's SAVEPOINT) and at most once per step.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum

import sqlalchemy as sa
from flask import current_app, flash, redirect
from sqlalchemy.orm import Session

from registry.kernel.audit.services import record as audit
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, StaleEdit


class StepRefused(ServiceError):
    """A step the workflow refuses (wrong state, not this user's step, 意见 missing); nothing was written."""


@dataclass(frozen=True)
class Opinion:
    """The 意见 (comment, reason) a step takes: whether it is required, how long it may be, where it is audited."""

    label: str
    required: bool = True
    limit: int = 2000
    #: The form field a refusal belongs to.
    field: str = "comment"
    missing: str = ""
    too_long: str = ""

    def clean(self, value) -> str:
        """The text stripped (Windows line ends made plain), or a refusal: missing when required, or too long."""
        text = (value or "").replace("\r\n", "\n").strip()
        if self.required and not text:
            raise StepRefused(self.missing or f"请填写{self.label}。", self.field)
        if len(text) > self.limit:
            message = self.too_long or f"{self.label}不能超过 {self.limit} 字（现为 {len(text)} 字）。"
            raise StepRefused(message, self.field)
        return text


def states_check(states: type[Enum], column: str = "state", name: str | None = None, *, nullable: bool = False):
    """A CHECK constraint listing the values of ``states`` that ``column`` may hold (named ``<column>_known``)."""
    allowed = ", ".join(f"'{s.value}'" for s in states)
    text = f"{column} IN ({allowed})"
    return sa.CheckConstraint(f"{column} IS NULL OR {text}" if nullable else text, name=name or f"{column}_known")


@dataclass(frozen=True)
class Transition:
    """One step: its name (unique in the workflow) and label, the states it may start from, where it leads.

    :param sources: the states the step starts from; a callable of the subject for a rule that depends on it (a
        county's report is approved after review, a prefecture's on submission); None: from any state.
    :param to: the state it leads to; None: the state stays (a confirmation, a sign-off of one side).
    :param may: who may take it, a predicate of the gate ``(user, subject) -> bool``; None: the service decides.
    :param refusal: the message when ``may`` answers False.
    :param wrong_state: the message when the state is not one of ``sources``, ``{state}`` its label (or a callable
        of the state); the workflow's ``wrong_state`` by default.
    :param opinion: the 意见 the step takes (None: none).
    :param action: what the step row and hooks call it (e.g. a ``StepAction`` member), the name by default.
    :param audit: the audit event's action.
    """

    name: str
    label: str
    sources: frozenset | Callable | None = None
    to: Enum | None = None
    may: Callable | None = None
    refusal: str = "您不能办理这一步。"
    wrong_state: str | Callable = ""
    wrong_field: str | None = None
    opinion: Opinion | None = None
    action: Enum | str | None = None
    audit: str = "update"

    def starts_from(self, subject) -> frozenset | None:
        return self.sources(subject) if callable(self.sources) else self.sources

    @property
    def step_action(self):
        return self.action if self.action is not None else self.name


@dataclass(frozen=True)
class StepEvent:
    """A step as the hooks see it: plain values, valid after the session has closed."""

    workflow: str
    step: str
    action: str
    label: str
    record_type: str
    record_id: int | None
    from_state: str | None
    to_state: str | None
    actor_id: int | None
    opinion: str
    at: datetime


class Workflow:
    """The states of one record type and the steps between them; see the module's docstring.

    :param name: the workflow's name, as hooks are registered (``"problem"``, ``"quarter_report"``).
    :param states: the ``LabelledEnum`` of its states.
    :param step: ``(record, transition, from_state, actor, opinion, on) -> row``: adds the dated step row (None:
        the record type keeps no step rows, its own columns date its steps).
    :param describe: ``(record, text) -> summary`` of the audit event (``text`` the step's label or the service's).
    :param initial: the state of a subject that has no record yet (a report nobody has submitted is a 草稿).
    :param refused: the exception of a refusal by ``may`` (the gate's ``OutOfScope`` where callers expect it).
    :param audit_opinion: the audit event's key for a step's 意见 (None: the 意见 is in the step row only), cut to
        ``audit_opinion_limit`` characters.
    """

    def __init__(
        self, name: str, states: type[Enum], transitions: Iterable[Transition], *, step: Callable | None = None,
        describe: Callable | None = None, wrong_state: str | Callable = "当前为“{state}”，不能{label}。",
        initial: Enum | None = None, refused: type[ServiceError] = StepRefused, state_attr: str = "state",
        audit_opinion: str | None = None, audit_opinion_limit: int | None = None,
    ):  # fmt: skip
        self.name = name
        self.states = states
        self.transitions = {}
        for transition in transitions:
            if transition.name in self.transitions:
                raise ValueError(f"workflow {name}: two transitions named {transition.name}")
            self.transitions[transition.name] = transition
        self.step_row = step
        self.describe = describe or (lambda _record, text: text)
        self.wrong_state = wrong_state
        self.initial = initial
        self.refused = refused
        self.state_attr = state_attr
        self.audit_opinion = audit_opinion
        self.audit_opinion_limit = audit_opinion_limit
        _WORKFLOWS[name] = self

    def __getitem__(self, name: str) -> Transition:
        return self.transitions[name]

    def next_steps(self, state) -> list[Transition]:
        """The steps that may be taken from ``state`` with a predicate (the people of the next step: a to-do, a
        notification); a step whose sources depend on the subject is listed when it starts from ``state`` for
        some subject, which the caller asks with ``allows``."""
        return [
            t for t in self.transitions.values()
            if t.may is not None and (t.sources is None or callable(t.sources) or state in t.sources)
        ]  # fmt: skip

    # ---- the database's rule ------------------------------------------------------------------------------------

    def state_check(self, column: str = "state", name: str | None = None, *, nullable: bool = False):
        """The CHECK constraint listing the states ``column`` may hold (``state_known``, ``to_state_known``…)."""
        return states_check(self.states, column, name, nullable=nullable)

    # ---- checks -------------------------------------------------------------------------------------------------

    def state_of(self, record):
        return getattr(record, self.state_attr) if record is not None else self.initial

    def _state_ok(self, transition: Transition, record, subject) -> bool:
        sources = transition.starts_from(subject)
        return sources is None or self.state_of(record) in sources

    def allows(self, record, name: str, user, *, subject=None) -> bool:
        """May ``user`` take this step now (the state allows it and the predicate says yes)? For pages: a gate
        predicate that raises is read as no."""
        transition = self.transitions[name]
        subject = record if subject is None else subject
        if not self._state_ok(transition, record, subject):
            return False
        if transition.may is None:
            return True
        try:
            with db.session.no_autoflush:
                allowed = transition.may(user, subject)
        except ServiceError:
            return False
        return allowed is None or bool(allowed)

    def check(self, record, name: str, actor, *, subject=None) -> Transition:
        """Refuse the step unless ``actor`` may take it and the record's state allows it; writes nothing.

        :param subject: what the predicate and a callable ``sources`` are asked about, the record by default (a
            report's unit, when the report may not exist yet).
        :raise ServiceError: the workflow's ``refused`` (who) or ``StepRefused`` (state).
        """
        transition = self.transitions[name]
        subject = record if subject is None else subject
        # Read without flushing: a service checks again in ``take`` after setting the fields that go with the new
        # state (an asset's disposal date), which the database accepts only together with the state.
        with db.session.no_autoflush:
            allowed = transition.may(actor, subject) if transition.may is not None else None
        if allowed is not None and not allowed:  # a gate that raises refuses by itself and answers None
            raise self.refused(transition.refusal)
        if not self._state_ok(transition, record, subject):
            state = self.state_of(record)
            message = transition.wrong_state or self.wrong_state
            text = message(state) if callable(message) else message.format(state=state.label, label=transition.label)
            raise StepRefused(text, transition.wrong_field)
        return transition

    def opinion(self, name: str, text) -> str:
        """The step's 意见 as it will be written, or its refusal (missing where required, too long)."""
        transition = self.transitions[name]
        return transition.opinion.clean(text) if transition.opinion is not None else (text or "").strip()

    # ---- taking a step ------------------------------------------------------------------------------------------

    def take(
        self, record, name: str, *, actor, opinion: str = "", on: date | datetime | None = None, subject=None,
        summary: str | None = None, changes: dict | None = None, audit_action: str | None = None,
        audited: bool = True,
    ):  # fmt: skip
        """Check the step (``check``, then the 意见), move the record, write the step row, flush, write the audit
        event and call the hooks. Returns the step row (None for a workflow without rows).

        :param on: the step's date, for the step row (an asset's change of state is dated by its day).
        :param summary: the audit summary's text (``describe`` wraps it), the step's label by default.
        :param changes: more audited changes (the state's and the 意见's are added).
        :param audited: False when the caller writes one audit event for several steps (``audit``).
        """
        transition = self.check(record, name, actor, subject=subject)
        text = self.opinion(name, opinion)
        before = self.state_of(record)
        if transition.to is not None:
            setattr(record, self.state_attr, transition.to)
        after = self.state_of(record)
        row = self.step_row(record, transition, before, actor, text, on) if self.step_row is not None else None
        db.session.flush()
        if audited:
            moved = {"state": [before.value, after.value]} if after is not before else {}
            extra = dict(changes or {})
            if self.audit_opinion and text:
                extra[self.audit_opinion] = [None, text[: self.audit_opinion_limit]]
            self.audit(record, transition, actor, summary=summary, changes=moved | extra, action=audit_action)
        self._stepped(record, transition, before, after, actor, text)
        return row

    def start(self, record, name: str, *, actor, opinion: str = "", on: date | datetime | None = None):
        """A new record's first step (登记): its state set, its step row written, the hooks called. The record's
        own create event is its audit (the caller writes it, an import in bulk); nothing is flushed here."""
        transition = self.transitions[name]
        setattr(record, self.state_attr, transition.to)
        row = self.step_row(record, transition, None, actor, opinion, on) if self.step_row is not None else None
        self._stepped(record, transition, None, transition.to, actor, opinion)
        return row

    def audit(self, record, transition: Transition | str, actor, *, summary=None, changes=None, action=None):
        """The audit event of a step (or of several taken at once: a sign-off that closes)."""
        if isinstance(transition, str):
            transition = self.transitions[transition]
        text = self.describe(record, summary if summary is not None else transition.label)
        return audit(action or transition.audit, record, actor=actor, summary=text, changes=changes or {})

    def _stepped(self, record, transition: Transition, before, after, actor, text: str) -> None:
        event = StepEvent(
            workflow=self.name, step=transition.name, action=str(getattr(transition.step_action, "value",
            transition.step_action)), label=transition.label, record_type=getattr(record, "__tablename__", ""),
            record_id=getattr(record, "id", None), from_state=before.value if before is not None else None,
            to_state=after.value if after is not None else None, actor_id=getattr(actor, "id", None), opinion=text,
            at=utcnow(),
        )  # fmt: skip
        for hook in _hooks(_WRITTEN, self.name, transition.name):
            hook(event, record)
        if _hooks(_COMMITTED, self.name, transition.name):
            session = db.session()
            transaction = session.get_nested_transaction() or session.get_transaction()
            session.info.setdefault(_PENDING, []).append((transaction, record, event))


def post_step(form, take: Callable, success, target: str, *, invalid: str = "", stale: str | None = None):
    """A step posted from its record's page (a button and perhaps an 意见): the form checked, ``take()`` (the
    service), the request's one commit, back to ``target`` with the outcome flashed. A refusal (``ServiceError``) is
    flashed and nothing is written; a form in error is flashed (after ``invalid``, e.g. "未保存："). A stale version
    is answered 409, or flashed as ``stale`` where the page says it so. ``success`` may be a function of the result.
    """
    if not form.validate_on_submit():
        messages = [str(m) for errors in form.errors.values() for m in errors]
        flash(invalid + ("；".join(messages) or "表单无效，请刷新页面后重试。"), "danger")
        return redirect(target)
    try:
        result = take()
    except (ServiceError, StaleEdit) as exc:
        if isinstance(exc, StaleEdit) and stale is None:
            raise  # the app's handler: rolled back, 409
        db.session.rollback()
        flash(str(exc) or stale, "danger")
        return redirect(target)
    db.session.commit()
    flash(success(result) if callable(success) else success, "success")
    return redirect(target)


#: Every declared workflow by name: a hook given a ``StepEvent`` finds its workflow (``workflow(event.workflow)``).
_WORKFLOWS: dict[str, Workflow] = {}


def workflow(name: str) -> Workflow:
    return _WORKFLOWS[name]


# ---- hooks ---------------------------------------------------------------------------------------------------------

_WRITTEN: dict[tuple[str, str | None], list[Callable]] = {}
_COMMITTED: dict[tuple[str, str | None], list[Callable]] = {}
#: session.info key: (transaction, record, event) of the steps taken in the session's transaction, not yet committed.
_PENDING = "registry.workflow_steps"


@dataclass
class Hook:
    """A registered callback; ``remove()`` takes it away again (tests)."""

    fn: Callable
    keys: list = field(default_factory=list)
    table: dict = field(default_factory=dict)

    def remove(self) -> None:
        for key in self.keys:
            self.table.get(key, []).remove(self.fn)


def on_step(workflow: str, *steps: str, committed: bool = True):
    """Register a callback for the steps of a workflow (all of them when none is named).

    ``committed`` (default): ``fn(event)`` once the step's transaction has committed. Otherwise ``fn(event,
    record)`` inside the transaction, right after the step's row and audit event: what it writes commits with the
    step. Returns a decorator whose result is the function; ``fn.hook.remove()`` unregisters it.
    """
    table = _COMMITTED if committed else _WRITTEN

    def register(fn):
        keys = [(workflow, s) for s in steps] or [(workflow, None)]
        for key in keys:
            table.setdefault(key, []).append(fn)
        fn.hook = Hook(fn, keys, table)
        return fn

    return register


def _hooks(table: dict, workflow: str, step: str) -> list[Callable]:
    return [*table.get((workflow, None), ()), *table.get((workflow, step), ())]


@sa.event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the transaction goes on
    pending = session.info.pop(_PENDING, None)
    for _transaction, record, event in pending or ():
        if event.record_id is None:  # a record inserted by the step's flush (an import's row): its key is known now
            identity = sa.inspect(record).identity
            event = replace(event, record_id=identity[0] if identity else None)
        for hook in _hooks(_COMMITTED, event.workflow, event.step):
            try:
                hook(event)
            except Exception:  # the step is committed: a hook that fails must not turn it into an error page
                current_app.logger.exception("workflow hook %r failed on %s", hook, event)


@sa.event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session, previous_transaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        return

    def within(transaction) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[_PENDING] = [entry for entry in pending if not within(entry[0])]
