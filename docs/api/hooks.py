"""mkdocs hooks for certfleet's docs: nothing that changes a source file, only how a page is read."""

from __future__ import annotations

import re
from typing import Any

_CITATIONS = re.compile(r"\[(\d+)\]\[(\d+)\]")


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Read adjacent numeric citations like ``[12][13]`` as two citations, not a link to a reference named 13."""
    return _CITATIONS.sub(r"[\1]\\[\2]", markdown)
