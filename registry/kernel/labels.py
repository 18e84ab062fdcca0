"""Enumerations that carry their Chinese labels, shared by every module's models."""

from enum import StrEnum


class LabelledEnum(StrEnum):
    """A StrEnum whose members carry a Chinese label (``LABELS`` on the class)."""

    @property
    def label(self) -> str:
        return self.LABELS[self]  # type: ignore[attr-defined]
