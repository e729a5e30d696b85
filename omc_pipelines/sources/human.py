"""What the Human ledger's sources have in common: the item type and "not configured".

HTML to text, which they share with the other sources, is ``sources.html_text``.

Every human source (news feeds, CryptoPanic, Reddit) yields :class:`HumanItem` rows
with one natural key, ``(source, external_id)``:

- news: ``source="news:<feed>"``, ``external_id`` the entry's link;
- CryptoPanic: ``source="cryptopanic"``, ``external_id`` the post id;
- Reddit: ``source="reddit"``, ``external_id`` the post's fullname (``t3_...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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
