"""The HTML pages are Jinja2 templates with autoescaping on: user text cannot become markup."""

from __future__ import annotations

import json
import re

from forgeml import templates
from forgeml.deploy.server.page import render_page


def test_every_template_compiles() -> None:
    names = templates.environment().list_templates()
    assert {"model_card.html.j2", "data_report.html.j2", "compare.html.j2", "try_page.html.j2"} <= set(names)
    for name in names:
        templates.environment().get_template(name)


def test_values_are_escaped_by_the_library() -> None:
    table = str(
        templates.macro("_macros.html.j2", "table")(("<th>",), [("<script>x</script>", None, 0.123456)])
    )
    assert "<script>" not in table and "&lt;script&gt;x&lt;/script&gt;" in table and "&lt;th&gt;" in table
    assert '<span class="muted">n/a</span>' in table and "<td>0.1235</td>" in table


def test_try_page_schema_cannot_close_its_script_element() -> None:
    name = "</script><img src=x onerror=alert(1)>"
    manifest = {
        "input_schema": {"columns": [{"name": name, "kind": "numeric"}]},
        "task": {"kind": "binary", "labels": ["a", "b"]},
    }
    page = render_page(manifest, api_key_required=False)
    assert "<img" not in page
    embedded = re.search(r'<script type="application/json" id="schema">(.*?)</script>', page, re.S)
    assert embedded is not None and json.loads(embedded.group(1))["columns"][0]["name"] == name
