"""Zero-shot templates: every listed language has a handful, written in the language."""
from __future__ import annotations

import pytest

from core.errors import UserError
from training.eval_templates import TEMPLATES, resolve_lang, templates_for

LISTED = "en de fr es it pt ru zh ja ko ar hi th vi tr pl nl id".split()


@pytest.mark.parametrize("lang", LISTED)
def test_templates_for_every_listed_language(lang):
    ts = templates_for(lang)
    assert len(ts) >= 5 and len(set(ts)) == len(ts)
    assert all(t.count("{}") == 1 and "XYZ" in t.format("XYZ") for t in ts)
    if lang != "en":
        assert not set(ts) & set(TEMPLATES["en"])


def test_regional_codes_fall_back_and_unknown_is_a_user_error():
    assert resolve_lang("pt-BR") == "pt" and resolve_lang("zh_Hans") == "zh" and resolve_lang("ja") == "ja"
    with pytest.raises(UserError, match="no zero-shot templates for language 'xx'"):
        templates_for("xx")
