"""HTML to text, once for every source: SEC filings, news feeds, CryptoPanic, announcements.

Parsed by selectolax (Lexbor, an HTML5 parser): the document is read as a browser
reads it (unclosed tags, stray ``<``, entities), then walked for its visible text:

- scripts, styles, the head, templates, frames, SVG, ``noscript``, inline XBRL's
  ``ix:header`` and anything styled ``display: none`` are dropped;
- block elements (paragraphs, divs, list items, rows, headings, ``br``) break lines;
  table cells are separated by a space;
- entities are decoded, non-breaking spaces are spaces, runs of spaces are squashed
  within each line and empty lines dropped.

``html_to_text(markup)`` keeps one paragraph a line (what a reader sees);
``html_to_text(markup, one_line=True)`` squashes it to a single line (what a
pattern or a coin search reads). Plain text passes through.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

BLOCKS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
    "hr", "figure", "figcaption", "section", "article", "header", "footer", "center", "title",
})
CELLS = frozenset({"td", "th"})
HIDDEN = frozenset({"script", "style", "head", "noscript", "template", "iframe", "svg", "ix:header"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.IGNORECASE)


def parse_html(markup: str) -> LexborHTMLParser:
    """The document as an HTML5 parser reads it."""
    return LexborHTMLParser(markup)


def is_hidden(node: LexborNode) -> bool:
    """Is this element one whose text a reader never sees (see the module's list)?"""
    if node.tag in HIDDEN:
        return True
    style = node.attributes.get("style") if node.is_element_node else None
    return bool(style and _HIDDEN_STYLE.search(style))


def is_visible(node: LexborNode) -> bool:
    """Neither the element nor any of its ancestors is hidden."""
    current: LexborNode | None = node
    while current is not None and current.is_element_node:
        if is_hidden(current):
            return False
        current = current.parent
    return True


def text_of(node: LexborNode) -> str:
    """The visible text under ``node``: blocks on lines of their own, cells apart, entities
    decoded; whitespace as written (see ``lines`` and ``squash``)."""
    parts: list[str] = []
    stack: list[LexborNode | str] = [node]  # a str is a separator to emit when an element closes
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item.is_text_node:
            parts.append(item.text_content or "")
        elif item.is_element_node and not is_hidden(item):
            separator = "\n" if item.tag in BLOCKS else " " if item.tag in CELLS else ""
            if separator:
                parts.append(separator)
                stack.append(separator)
            stack.extend(reversed(list(item.iter(include_text=True))))
    return "".join(parts)


def squash(text: str | None) -> str:
    """One line: whitespace runs (non-breaking spaces included) become one space."""
    return re.sub(r"\s+", " ", (text or "").replace("\xa0", " ")).strip()


def lines(text: str) -> str:
    """Each line squashed, empty lines dropped."""
    squashed = (squash(line) for line in text.split("\n"))
    return "\n".join(line for line in squashed if line)


def html_to_text(markup: str | None, *, one_line: bool = False) -> str:
    """The visible text of an HTML document or fragment: one block a line, or with
    ``one_line`` everything on one line. ``None`` and ``""`` give ``""``."""
    if not markup:
        return ""
    root = parse_html(markup).root
    text = text_of(root) if root is not None else ""
    return squash(text) if one_line else lines(text)
