"""Base form and fields shared by every domain: the one input layer.

Every form built on BaseForm strips surrounding whitespace, speaks Chinese (WTForms' zh catalogue), refuses
control characters in text, keeps integers inside the database column and dates inside DATE_MIN..DATE_MAX,
and an edit form without its optimistic-lock version is a stale edit (409), never an unchecked write.
"""

import unicodedata
from datetime import date

from flask import current_app, request
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import DateField, HiddenField, IntegerField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.fields.core import UnboundField
from wtforms.fields.simple import TextAreaField
from wtforms.validators import NumberRange, StopValidation, ValidationError
from wtforms.widgets import Select

#: PostgreSQL's INTEGER, the type of every integer column a form writes (BIGINT ones declare their own range).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: The registry's dates: from the founding of the People's Republic to the end of the century (config keys).
DATE_MIN, DATE_MAX = date(1949, 10, 1), date(2100, 12, 31)
CONTROL_MESSAGE = "不能包含控制字符。"
#: Line breaks and tabs belong in multi-line text; everywhere else every control character is refused.
TEXTAREA_ALLOWED = frozenset("\t\n\r")


def strip(value):
    # Exactly str: coerced values such as StrEnum members must keep their type.
    return value.strip() if type(value) is str else value


def has_control_characters(text: str, allowed=frozenset()) -> bool:
    """True if ``text`` holds a C0 or C1 control character (NUL, ESC, DEL…) other than those ``allowed``.

    PostgreSQL cannot store NUL at all and the others are invisible on screen and break exports."""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def no_control_characters(form, field):
    """Validator every text field gets from BaseForm; runs first, whatever the field's own validators say."""
    if isinstance(field.data, str):
        allowed = TEXTAREA_ALLOWED if isinstance(field, TextAreaField) else frozenset()
        if has_control_characters(field.data, allowed):
            # Stop: later validators (or the service) must never see the text.
            raise StopValidation(CONTROL_MESSAGE)


def integer_in_column(form, field):
    """Validator every IntegerField without a NumberRange of its own gets: the value fits an INTEGER column."""
    if field.data is not None and not INT_MIN <= field.data <= INT_MAX:
        raise ValidationError("数值超出允许范围。")


class OptionsSelect(Select):
    """WTForms' select, its plain options written directly: the same bytes as ``Select`` (``selected`` before
    ``value``, both escaped), five times faster. A unit select lists every county of the province, and WTForms
    builds each option through ``html_params``; on a form page that was a third of the request. Options with
    attributes of their own (``render_kw``) go through WTForms unchanged."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        if kwargs or choice.render_kw:
            return super().render_option(choice, **kwargs)
        value = str(choice.value) if isinstance(choice.value, bool) else choice.value
        label = escape(choice.label or choice.value)
        return Markup(f'<option {"selected " if choice.selected else ""}value="{escape(value)}">{label}</option>')


class BaseForm(FlaskForm):
    """The base of every form: see the module docstring for what it guarantees."""

    class Meta:
        locales = ("zh",)

        def bind_field(self, form, unbound_field, options):
            # The unbound field is shared by every instance of the form class: build on copies, never mutate it.
            field_class = unbound_field.field_class
            args, kwargs = list(unbound_field.args), dict(unbound_field.kwargs)
            validators = list(args.pop(1) if len(args) > 1 else kwargs.get("validators") or [])
            filters = list(kwargs.get("filters") or [])
            # Passwords are verified exactly as typed (and only ever hashed, never stored or shown).
            if strip not in filters and field_class is not PasswordField:
                filters.insert(0, strip)
            if issubclass(field_class, StringField) and field_class is not PasswordField:
                validators.insert(0, no_control_characters)
            if issubclass(field_class, IntegerField):
                kwargs.setdefault("invalid_value_message", "请填写整数。")
                if not any(isinstance(v, NumberRange) for v in validators):
                    validators.append(integer_in_column)
            if issubclass(field_class, SelectField) and type(field_class.widget) is Select and "widget" not in kwargs:
                kwargs["widget"] = OptionsSelect(multiple=field_class.widget.multiple)
            kwargs.update(validators=validators, filters=filters)
            return UnboundField(field_class, *args, **kwargs).bind(form=form, **options)


class _NoVersion:
    """What an edit form posted without a usable version carries: check_version refuses it (409)."""

    def __repr__(self):
        return "NO_VERSION"


NO_VERSION = _NoVersion()


def parse_version(text) -> "int | _NoVersion":
    """A posted version: a plain non-negative integer, or NO_VERSION for anything else (missing, empty, "abc")."""
    text = text if isinstance(text, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else NO_VERSION


def posted_version() -> "int | _NoVersion":
    """The version of a bare POST (a delete button): as VersionField reads it."""
    return parse_version(request.form.get("version"))


class VersionField(HiddenField):
    """Carries the record's version through an edit form; services compare it before writing.

    Its data is the int the page was rendered with, or NO_VERSION when the post lacks one (missing, empty or
    garbled): a create ignores it, an edit refuses it as stale (check_version) — never an unchecked write.
    """

    def process_data(self, value):
        self.data = value if isinstance(value, int) else NO_VERSION

    def process_formdata(self, valuelist):
        self.data = parse_version(valuelist[0] if valuelist else None)

    def _value(self):
        return "" if self.data is NO_VERSION or self.data is None else str(self.data)


def _config_date(key: str, default: date) -> date:
    value = current_app.config.get(key, default) if current_app else default
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def date_window() -> tuple[date, date]:
    """The dates the registry accepts (DATE_MIN, DATE_MAX in the configuration)."""
    return _config_date("DATE_MIN", DATE_MIN), _config_date("DATE_MAX", DATE_MAX)


class ChineseDateField(DateField):
    """A date input that reports bad input in Chinese. Pair it with InputRequired, not DataRequired,
    which would replace the format message with "required"."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("invalid_value_message", "日期格式应为 YYYY-MM-DD，例如 2024-03-31。")
        super().__init__(label, validators, **kwargs)

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None:
            first, last = date_window()
            if not first <= self.data <= last:
                self.data = None
                raise ValueError(f"日期应在 {first.isoformat()} 至 {last.isoformat()} 之间。")


def blank_means(default):
    """Filter: a number left blank (or not posted) takes ``default``, as a NOT NULL column with a default would."""
    return lambda value: default if value is None else value


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
    number = int(value)
    # An id beyond INTEGER would fail in the database ("out of range"), not as an invalid choice.
    if not 1 <= number <= INT_MAX:
        raise ValueError(value)
    return number


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


def preselect_only_county(form) -> None:
    """A new form's county fields (``…county_id``) with one county to choose from get it chosen: a county clerk's
    own county, never a "请选择…" they must open for one answer. A field already holding a value keeps it. The
    choices are ``choice()``'s (every county select is filled with ``unit_choice`` and ``BLANK``)."""
    for name, field in form._fields.items():
        if name.endswith("county_id") and field.data in (None, "") and getattr(field, "choices", None):
            counties = [c.value for c in field.choices if c.value != ""]
            if len(counties) == 1:
                field.data = counties[0]
