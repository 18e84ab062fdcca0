"""Which record types take evidence files, and where each one's scope comes from.

A scoped model (one declaring ``__scope__``) registers with a decorator in its own models module::

    @attachable
    class Exchange(...): ...

A record that lies where its parent lies (a fund transaction, in its project's scope) names the relationship,
and the attribute dating it into a quarter when it has one (a locked quarter refuses new evidence)::

    @attachable(follows="project", date="occurred_on", noun="资金记录")
    class FundTransaction(...): ...

The record type in URLs and in the ``attachments`` table is the model's ``__tablename__``.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from registry.permissions import declared_scope, scope_filter


@dataclass(frozen=True)
class Kind:
    model: type
    #: Relationship to the scoped record this one follows (None: the model declares ``__scope__`` itself).
    follows: str | None = None
    #: Attribute dating the record into a quarter (when the scoped model's own date does not).
    date: str = ""
    #: What the record is called ("资金记录"); the scoped model's noun by default.
    noun: str = ""
    #: Records with personal data: every download is audited too.
    personal: bool = False

    @property
    def name(self) -> str:
        return self.model.__tablename__

    @property
    def scoped_model(self):
        if self.follows is None:
            return self.model
        return sa.inspect(self.model).relationships[self.follows].mapper.class_

    @property
    def required(self) -> bool:
        """Offices must attach a file to every record of this type (a voucher, a check's record, a progress entry's
        proof): the quarterly report lists those still without one. Records with personal data (placements) are
        registered for the files an office chooses to keep, not one per record."""
        return not self.personal

    @property
    def label(self) -> str:
        return self.noun or declared_scope(self.scoped_model).noun

    def scoped(self, record):
        """The record whose scope answers for ``record`` (itself, or the parent it follows)."""
        return record if self.follows is None else getattr(record, self.follows)

    def visible(self, user):
        """WHERE clause on ``model`` of the records ``user`` may see."""
        if self.follows is None:
            return scope_filter(user, self.model)
        rel = sa.inspect(self.model).relationships[self.follows]
        (column,) = rel.local_columns
        parent = self.scoped_model
        return getattr(self.model, column.key).in_(sa.select(parent.id).where(scope_filter(user, parent)))


#: record type (table name) -> Kind
KINDS: dict[str, Kind] = {}


def attachable(model=None, *, follows: str | None = None, date: str = "", noun: str = "", personal: bool = False):
    """Class decorator registering a record type for evidence files (with or without arguments)."""

    def register(cls):
        if follows is None:
            declared_scope(cls)  # a type without a scope of its own must say which record it follows
        KINDS[cls.__tablename__] = Kind(cls, follows=follows, date=date, noun=noun, personal=personal)
        return cls

    return register(model) if model is not None else register


def kind_of(record_type: str) -> Kind | None:
    return KINDS.get(record_type)
