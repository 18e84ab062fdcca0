"""Base form and fields shared by every domain: stripped input, Chinese messages, optimistic-lock version."""

from datetime import date

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, PasswordField, SelectChoice, SelectField
from wtforms.validators import ValidationError


def strip(value):
    # Exactly str: coerced values such as StrEnum members must keep their type.
    return value.strip() if type(value) is str else value


class BaseForm(FlaskForm):
    """Every form strips surrounding whitespace and speaks Chinese (WTForms' zh catalogue)."""

    class Meta:
        locales = ("zh",)

        def bind_field(self, form, unbound_field, options):
            filters = unbound_field.kwargs.get("filters", [])
            # Passwords are verified exactly as typed.
            if strip not in filters and unbound_field.field_class is not PasswordField:
                unbound_field.kwargs["filters"] = [strip, *filters]
            return unbound_field.bind(form=form, **options)


class VersionField(HiddenField):
    """Carries the record's version through an edit form; services compare it before writing."""

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and valuelist[0]:
            try:
                self.data = int(valuelist[0])
            except ValueError as exc:
                raise ValueError("版本号无效，请刷新页面后重试。") from exc


class ChineseDateField(DateField):
    """A date input that reports bad input in Chinese. Pair it with InputRequired, not DataRequired,
    which would replace the format message with "required"."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("invalid_value_message", "日期格式应为 YYYY-MM-DD，例如 2024-03-31。")
        super().__init__(label, validators, **kwargs)


def not_after(other_field_name: str, message: str):
    """Validator: this date field may not be earlier than another date field of the same form."""

    def check(form, field):
        other = form[other_field_name].data
        if field.data and isinstance(other, date) and field.data < other:
            raise ValidationError(message)

    return check


def optional_int(value):
    """Coerce a select value to an int id, or None for the blank choice."""
    if value in (None, "", "None"):
        return None
    return int(value)


class IdSelectField(SelectField):
    """A select of record ids; the blank choice means None. Choices are set by the view."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("choices", [])
        super().__init__(label, validators, coerce=optional_int, **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("所选项无效。") from exc


def choice(value, label, group: str | None = None) -> SelectChoice:
    """One <option>; ``group`` puts it in an <optgroup> (units are grouped by their parent)."""
    return SelectChoice(value="" if value is None else value, label=label, optgroup=group)


def unit_choice(unit) -> SelectChoice:
    """A unit as an option, grouped under its parent (the parent relationship should be loaded)."""
    label = unit.name if unit.is_division else f"{unit.name}（{unit.kind.label}）"
    return choice(unit.id, label, unit.parent.full_name if unit.parent else "省")


BLANK = choice("", "请选择…")
