"""What the tests read back from edgebench's SVG plots."""

from __future__ import annotations

import re


def svg_texts(svg: str) -> list[tuple[str, float, float, str, str]]:
    """(class, x, y, anchor, text) of each one-line text in an SVG."""
    out = []
    for m in re.finditer(r'<text x="([\d.-]+)" y="([\d.-]+)" font-size="[\d.]+"(?: class="([^"]*)")?[^>]*'
                         r'text-anchor="(\w+)">([^<]*)</text>', svg):  # fmt: skip
        out.append((m.group(3) or "", float(m.group(1)), float(m.group(2)), m.group(4), m.group(5)))
    return out
