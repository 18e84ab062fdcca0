"""What a record type declares about where it lies, so that one gate (``registry.permissions``) can answer every
read and every write of it without a filter written by hand for each stream.

A scoped model sets ``__scope__ = RecordScope(...)`` naming its columns; ``permissions.scope_filter(user, Model)``
builds the WHERE clause of every list, page and export from it, and ``permissions.authorize_write`` checks every
create, change and delete against it, for forms, imports and the command line alike.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordScope:
    #: Attribute holding the Sichuan county (a ``units.id``) the record lies in.
    county: str
    #: Attribute holding the pairing the record is attached to (derived or chosen), if the type has one.
    pairing: str | None = None
    #: Permission (``permissions.PERMISSIONS``) needed to create, change or delete the record.
    write: str = ""
    #: How the pairing follows from the record, for refusals: "按户籍县和开始日期" (empty when it is chosen).
    pairing_rule: str = ""
    #: The form field a refusal of the pairing is shown at (the date the pairing follows from, or the pairing).
    pairing_field: str = "pairing_id"
    #: What the record is called in messages ("劳务协作记录").
    noun: str = "记录"
    #: Attribute holding the date that places the record in a reporting quarter (a placement's start date, a
    #: purchase's date): a record dated in a quarter the province has approved and locked may not be written.
    #: Empty for a type whose quarter follows from its parts (a project: its fund transactions and status steps).
    date: str = ""
    #: Attribute holding the date a record stops counting (a placement's end, a posting's departure), if any: it
    #: moves figures of the quarter it falls in ("in work", "in post"), so it may not lie in a locked quarter either.
    end_date: str = ""
