"""The Human ledger's sources in the sandbox: news feeds, CryptoPanic, Reddit.

Each source is a module of its own, serving its recordings in ``recordings/human/`` and having
its own control routes: ``news_feeds.py``, ``cryptopanic.py``, ``reddit.py``.

Recorded times move forward as one block per source (per feed for the news), so that
the newest item falls at the start of the current UTC hour: within the last hour, and
identical for two sandboxes started in the same hour.

Control routes for the three together: ``POST /_sandbox/human/reset``; ``GET /_sandbox/human/state``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from omc_pipelines.sandbox.cryptopanic import PAGE_SIZE, CryptoPanicSandbox
from omc_pipelines.sandbox.news_feeds import NewsFeedsSandbox
from omc_pipelines.sandbox.reddit import RedditSandbox
from omc_pipelines.sandbox.server import Response, SandboxServer
from omc_pipelines.sandbox.times import hour_anchor


class HumanSandbox:
    """The three human sources on one clock: ``news``, ``cryptopanic``, ``reddit``."""

    def __init__(self, now: datetime | None = None, *, page_size: int = PAGE_SIZE, anchor: datetime | None = None):
        self._now = now
        # Where the recordings' newest item goes (the start of its UTC hour); None: the current hour.
        self._anchor_at = anchor
        self.news = NewsFeedsSandbox(self.now)
        self.cryptopanic = CryptoPanicSandbox(self.now, page_size=page_size)
        self.reddit = RedditSandbox(self.now)
        self.reset()

    def now(self) -> datetime:
        return (self._now or datetime.now(timezone.utc)).astimezone(timezone.utc)

    def reset(self) -> None:
        """Back to the recordings; Reddit access approved; no tokens issued."""
        anchor = hour_anchor(self._anchor_at or self.now())
        for source in (self.news, self.cryptopanic, self.reddit):
            source.reset(anchor)

    def state(self) -> dict[str, Any]:
        return {"feeds": self.news.state(), "cryptopanic_posts": len(self.cryptopanic.posts), **self.reddit.state()}

    def env(self, url: str, *, credentials: bool = True) -> dict[str, str]:
        """The environment that points the pipeline's human sources at a sandbox at ``url``,
        with the sandbox's own (fake) credentials unless ``credentials`` is false."""
        url = url.rstrip("/")
        return {**self.news.env(url), **self.cryptopanic.env(url, credentials=credentials),
                **self.reddit.env(url, credentials=credentials)}

    def install(self, server: SandboxServer) -> None:
        for source in (self.news, self.cryptopanic, self.reddit):
            source.install(server)
        server.route("POST", r"/_sandbox/human/reset", self._control_reset)
        server.route("GET", r"/_sandbox/human/state", lambda req, m: Response(body=self.state()))

    def _control_reset(self, request, m) -> Response:
        self.reset()
        return Response(body={"status": "ok"})
