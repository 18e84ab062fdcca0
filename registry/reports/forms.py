"""Forms of the reports module: the quarter's narrative."""

from wtforms import TextAreaField
from wtforms.validators import Length

from registry.kernel.forms import BaseForm, VersionField
from registry.reports.models import NARRATIVE_MAX

TOO_LONG = f"不能超过 {NARRATIVE_MAX} 字。"


class NarrativeForm(BaseForm):
    highlights = TextAreaField("亮点", validators=[Length(max=NARRATIVE_MAX, message=TOO_LONG)])
    problems = TextAreaField("问题", validators=[Length(max=NARRATIVE_MAX, message=TOO_LONG)])
    next_steps = TextAreaField("下步打算", validators=[Length(max=NARRATIVE_MAX, message=TOO_LONG)])
    version = VersionField()
