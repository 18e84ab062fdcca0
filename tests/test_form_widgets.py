"""The registry's select widget writes the very bytes WTForms' own would, faster (registry.kernel.forms)."""

from werkzeug.datastructures import MultiDict
from wtforms import Form, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import Select

from registry.kernel.forms import BaseForm, IdSelectField, OptionsSelect

CHOICES = [
    SelectChoice("", "请选择…"),
    *(SelectChoice(str(i), f"县{i}", optgroup=f"州{i // 3}") for i in range(7)),
    SelectChoice('a"b', "<b>&", optgroup="州9"),
    SelectChoice("x", "禁用", render_kw={"disabled": True}, optgroup="州9"),
]
PLAIN = [SelectChoice(v, label) for v, label in (("1", "一"), (True, "是"), (None, "无"), (3, "<三>"), ("", ""))]


class Stock(Form):
    grouped = SelectField(choices=CHOICES)
    plain = SelectField(choices=PLAIN)
    many = SelectMultipleField(choices=PLAIN[:2])


class Fast(Form):
    grouped = SelectField(choices=CHOICES, widget=OptionsSelect())
    plain = SelectField(choices=PLAIN, widget=OptionsSelect())
    many = SelectMultipleField(choices=PLAIN[:2], widget=OptionsSelect(multiple=True))


def test_options_are_written_as_wtforms_writes_them():
    for data in ({}, {"grouped": "2", "plain": "True", "many": ["1", "True"]}, {"grouped": 'a"b', "plain": "3"}):
        stock, fast = Stock(MultiDict(data)), Fast(MultiDict(data))
        for name in ("grouped", "plain", "many"):
            assert str(fast[name](required=True)) == str(stock[name](required=True))
            assert str(fast[name]()) == str(stock[name]())


def test_every_select_of_a_registry_form_uses_it(app):
    class Example(BaseForm):
        unit = IdSelectField("单位")
        kind = SelectField("类型", choices=PLAIN)
        kinds = SelectMultipleField("类型", choices=PLAIN)
        own = SelectField("自定", choices=PLAIN, widget=Select())

    with app.test_request_context():
        form = Example(meta={"csrf": False})
    assert type(form.unit.widget) is OptionsSelect and type(form.kind.widget) is OptionsSelect
    assert form.kinds.widget.multiple and type(form.kinds.widget) is OptionsSelect
    assert type(form.own.widget) is Select  # a widget the form chose stays
