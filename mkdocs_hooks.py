"""MkDocs hook (``hooks:`` in mkdocs.yml): the build fails on markup that renders wrong, so
it cannot come back. Two kinds: Sphinx roles (``:func:`x```), which Markdown shows as text;
and a ``*`` in a formula outside code (``kh*kw``), which Markdown turns into italics."""

from __future__ import annotations

import re
from typing import Any

from mkdocs.exceptions import PluginError

SPHINX_ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|obj|exc):`")
#: Emphasis that opens right after a letter, digit or bracket, or closes right before one:
#: a product such as ``kh*kw`` or ``2*ph`` that Markdown read as italics.
INTRAWORD_EMPHASIS = re.compile(r"[\w)\]]<em>|</em>[\w(\[]")


def on_page_content(html: str, page: Any, **_: Any) -> str:
    problems = []
    for pattern, what in (
        (SPHINX_ROLE, "a Sphinx role (use a mkdocstrings cross-reference)"),
        (INTRAWORD_EMPHASIS, "italics inside a formula (put it in code)"),
    ):
        for match in pattern.finditer(html):
            context = re.sub(r"<[^>]+>", "", html[max(0, match.start() - 60) : match.end() + 60])
            problems.append(f"{what}: ...{' '.join(context.split())}...")
    if problems:
        listed = "\n  ".join(problems)
        raise PluginError(f"{page.file.src_path}: markup that renders wrong:\n  {listed}")
    return html
