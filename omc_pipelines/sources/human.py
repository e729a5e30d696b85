"""What the Human ledger's sources have in common: the item type, "not configured", HTML to text.

Every human source (news feeds, CryptoPanic, Reddit) yields :class:`HumanItem` rows
with one natural key, ``(source, external_id)``:

- news: ``source="news:<feed>"``, ``external_id`` the entry's link;
- CryptoPanic: ``source="cryptopanic"``, ``external_id`` the post id;
- Reddit: ``source="reddit"``, ``external_id`` the post's fullname (``t3_...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser

# Sentiment reads the title and the start of the text: VADER is built for short
# social text, and on a long body its compound score saturates towards +-1.
SENTIMENT_TEXT_CHARS = 600


class NotConfigured(Exception):
    """A source that needs credentials has none: nothing was sent anywhere.

    ``source`` names the source, ``missing`` the environment variables to set; the
    message says both and is safe to show in the UI (it never carries a value)."""

    def __init__(self, source: str, missing: tuple[str, ...]):
        self.source, self.missing = source, tuple(missing)
        super().__init__(f"{source} is not configured: set {', '.join(self.missing)}")

    def __reduce__(self):
        return (self.__class__, (self.source, self.missing))


@dataclass(frozen=True)
class HumanItem:
    source: str  # "news:<feed>", "cryptopanic" or "reddit"
    external_id: str  # natural key within the source
    title: str
    text: str  # plain text, HTML stripped
    url: str
    author: str | None
    published_at: datetime  # aware, UTC
    currencies: tuple[str, ...]  # coin symbols, upper case
    engagement: dict[str, int] = field(default_factory=dict, hash=False)  # a dict: left out of the hash
    # Where inside the source: the feed's name, the publisher's domain on CryptoPanic, the subreddit.
    channel: str | None = None
    # "news"/"media" on CryptoPanic, "self"/"link" on Reddit, "article" for a news entry.
    kind: str | None = None
    # The item carried no date, nor did its feed: published_at is the time it was fetched.
    undated: bool = False
    # Pinned by the moderators (Reddit): see ``RedditClient.new_posts``.
    stickied: bool = False

    @property
    def sentiment_text(self) -> str:
        """The text to score: the title, then the start of the body."""
        body = self.text[:SENTIMENT_TEXT_CHARS]
        if not body:
            return self.title
        if not self.title:
            return body
        joiner = " " if self.title.rstrip()[-1:] in ".!?" else ". "
        return f"{self.title.rstrip()}{joiner}{body}"


# --- HTML to text -------------------------------------------------------------------------

_BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                     "blockquote", "pre", "hr", "figure", "figcaption", "section", "article", "header", "footer"})
_HIDDEN = frozenset({"script", "style", "noscript", "template", "iframe", "svg", "head"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "source", "wbr", "area", "col", "embed", "param"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """Visible text of an HTML fragment: tags gone, entities decoded, scripts and styles
    dropped, blocks as line breaks, runs of spaces squashed. Plain text passes through."""
    if not markup:
        return ""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def squash(text: str | None) -> str:
    """One line: whitespace runs become one space."""
    return re.sub(r"\s+", " ", (text or "").replace("\xa0", " ")).strip()
