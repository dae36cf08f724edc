"""The HTML pages forgeml writes (model card, data report, run comparison, compression report, the
language-model fine-tuning report, the server's try-it and chat pages) as Jinja2 templates in this
folder, rendered with autoescaping on.

Escaping is Jinja2's job: every value a template prints is escaped unless a caller marks it safe
with :class:`markupsafe.Markup` (only HTML that a template here rendered). This package imports
nothing of forgeml, so any layer may render a page; jinja2 is imported on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup


@functools.cache
def environment() -> Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("forgeml", "templates"),
        autoescape=True,  # every template here is HTML (or CSS/JS included into HTML, which prints no values)
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render, not prints nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.policies["json.dumps_kwargs"] = {"sort_keys": False}  # |tojson keeps the order it is given
    return environment


def render(name: str, **context: Any) -> str:
    """Template ``name`` of this folder, rendered with ``context``."""
    return environment().get_template(name).render(**context)


def macro(template: str, name: str) -> Callable[..., Markup]:
    """The macro ``name`` of template ``template``, callable from Python (it returns escaped markup)."""
    return getattr(environment().get_template(template).module, name)
