"""To-dos (待办): every step waiting for a person, derived from the records each time it is asked, never stored.

A module registers its sources in one place, like its importers::

    @todo_source("problem", "整改问题")
    def problem_todos(user, today):
        yield Todo("待审核销号", f"{problem.unit.name}：{problem.title}", url, due=problem.deadline)

A source answers for one user: the steps that user may take now (the gate's predicates decide, as the workflow's
pages do), each with its link to the place of action and its due date when it has one. Because nothing is copied,
a to-do disappears the moment its step is taken, by whoever takes it, and a record out of the user's scope never
shows. ``todos_for`` gathers every source, overdue first, then by due date; ``count_for`` is what the navigation
shows. The kernel knows no record type: the quarter close, problems, assets and notices register theirs.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from flask import g, has_request_context


@dataclass(frozen=True)
class Todo:
    """One thing a person has to do: what (``action``, e.g. 待审核) on which record (``title``), where (``url``)."""

    action: str
    title: str
    url: str
    due: date | None = None
    #: What the person needs to know before acting (the opinion a report was returned with).
    note: str = ""
    #: Set by ``todos_for``: the source's label (季度报表, 整改问题…).
    kind: str = field(default="", compare=False)

    def overdue(self, today: date) -> bool:
        return self.due is not None and today > self.due

    def due_soon(self, today: date, days: int = 7) -> bool:
        return self.due is not None and not self.overdue(today) and (self.due - today).days <= days


@dataclass(frozen=True)
class Source:
    name: str
    label: str
    find: Callable[[object, date], Iterable[Todo]]


#: name -> source, in registration order.
SOURCES: dict[str, Source] = {}


def todo_source(name: str, label: str):
    """Register ``find(user, today) -> iterable of Todo`` as the to-dos of ``label`` (a record type's name)."""

    def register(find):
        SOURCES[name] = Source(name, label, find)
        return find

    return register


def todos_for(user, today: date | None = None, *, kinds: Iterable[str] | None = None) -> list[Todo]:
    """Every to-do of ``user`` (of the sources named in ``kinds``, else all): overdue first, then by due date, the
    undated last."""
    today = today or date.today()
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    # A page asks twice (the navigation's count, the home page's list): the sources run once per request.
    key = (getattr(user, "id", None), today)
    if kinds is None and has_request_context() and g.get("todos", (None,))[0] == key:
        return list(g.todos[1])
    wanted = set(kinds) if kinds is not None else None
    found = []
    for source in SOURCES.values():
        if wanted is not None and source.name not in wanted:
            continue
        for todo in source.find(user, today):
            found.append(Todo(todo.action, todo.title, todo.url, todo.due, todo.note, kind=source.label))
    found.sort(key=lambda t: (not t.overdue(today), t.due is None, t.due or today, t.kind, t.title))
    if kinds is None and has_request_context():
        g.todos = (key, found)
    return list(found)


def count_for(user, today: date | None = None) -> int:
    return len(todos_for(user, today))
