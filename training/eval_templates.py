"""Zero-shot prompt templates per language: `templates_for(lang) -> list[str]`, each with one `{}`.

English uses the seven templates OpenAI selected for ImageNet plus "a photo of a {}.". Other
languages have a handful written in the language; where grammar would inflect the class name
(case, gender, articles) the templates put the name after a colon or use a construction that
leaves it in its dictionary form, since class-name files hold dictionary forms. The templates
themselves are in eval_templates.json.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError

# The templates are data: eval_templates.json, {lang: [template, ...]} (shipped as package data).
TEMPLATES: dict[str, list[str]] = json.loads(
    Path(__file__).with_name("eval_templates.json").read_text(encoding="utf-8"))


def resolve_lang(lang: str) -> str:
    """The TEMPLATES key for `lang`: exact, else its base code (`pt-BR`, `zh_Hans` -> `pt`, `zh`)."""
    if lang in TEMPLATES:
        return lang
    base = lang.replace("_", "-").split("-")[0].lower()
    if base in TEMPLATES:
        return base
    raise UserError(f"no zero-shot templates for language {lang!r}; known: {', '.join(sorted(TEMPLATES))}")


def templates_for(lang: str) -> list[str]:
    """The prompt templates for `lang` (see resolve_lang)."""
    return TEMPLATES[resolve_lang(lang)]
