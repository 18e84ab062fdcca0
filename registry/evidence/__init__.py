"""Evidence files (附件) on any record: a generic attachment keyed by (record type, record id).

A record type takes attachments with one line in its own models module (see ``kinds.attachable``); its detail page
shows ``templates/_macros/evidence.html``'s panel and its list the counts. Reads go through the record's scope
(an attachment of a record the user cannot see is 404), writes through ``permissions.authorize_write`` of the
record (scope and locked quarters), every upload and delete is audited.
"""

from registry.evidence.kinds import attachable

__all__ = ["attachable"]
