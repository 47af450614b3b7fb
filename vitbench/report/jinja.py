"""The Jinja environment both renderers use: the packaged templates (top-level templates/, installed
as vitbench.templates), StrictUndefined, and the filters that lay a Table out (`md_rows`, `html_rows`)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2

from vitbench.report.html import html_rows
from vitbench.report.markdown import md_rows


def environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """Markdown templates render as written; `*.html.j2` templates escape what they insert. A
    `templates_dir` overrides the packaged templates it holds; the others still come from the package."""
    loader = jinja2.FunctionLoader(_packaged_template)
    if templates_dir is not None:
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(templates_dir)), loader])
    autoescape = jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False)
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=autoescape,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["md_rows"] = md_rows
    env.filters["html_rows"] = html_rows
    return env


# A source checkout's own templates/ (beside the vitbench package) wins over an installed copy, so a
# checkout run with PYTHONPATH renders with its templates, not those of whichever tree was installed.
_CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _packaged_template(name: str) -> str | None:
    local = _CHECKOUT_TEMPLATES / name
    if (_CHECKOUT_TEMPLATES / "comparison.md.j2").is_file() and local.is_file():
        return local.read_text(encoding="utf-8")
    entry = resources.files("vitbench.templates").joinpath(name)
    return entry.read_text(encoding="utf-8") if entry.is_file() else None
