"""CryptoPanic in the sandbox, one of the Human ledger's sources (see ``human.py``).

Served from ``recordings/human/cryptopanic_posts.json``: posts in the developer v2 shape at
``/api/developer/v2/posts/``, ``page_size`` a page, ``next`` an absolute URL back to the sandbox
carrying the ``auth_token`` as CryptoPanic's own links do. Two posts have no ``currencies``. A
missing or wrong ``auth_token`` answers 403 ``{"status": "Incomplete", "info": "Token not found"}``
(CryptoPanic's error shape, as far as we know it).

``POST /_sandbox/human/cryptopanic`` ``{"title", "description"?, "currencies"?, "votes"?, "kind"?, "domain"?, "published_at"?}``
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from omc_pipelines import settings
from omc_pipelines.sandbox.server import Request, Response, SandboxServer
from omc_pipelines.sandbox.times import iso_z, parse_time

RECORDINGS = Path(__file__).with_name("recordings") / "human" / "cryptopanic_posts.json"
CRYPTOPANIC_TOKEN = "sandbox-cryptopanic-token-5f2c9a"
CRYPTOPANIC_POSTS = "/api/developer/v2/posts/"
PAGE_SIZE = 20
JSON_TYPE = "application/json; charset=utf-8"


def _cryptopanic_refusal(info: str) -> Response:
    return Response(403, {"status": "Incomplete", "info": info}, content_type=JSON_TYPE)


class CryptoPanicSandbox:
    """CryptoPanic's posts, token and routes."""

    def __init__(self, now: Callable[[], datetime], *, token: str = CRYPTOPANIC_TOKEN, page_size: int = PAGE_SIZE):
        self._lock = threading.Lock()
        self.now = now
        self.token = token
        self.page_size = page_size
        self.posts: list[dict[str, Any]] = []
        self._server: SandboxServer | None = None

    def reset(self, anchor: datetime) -> None:
        """Back to the recording, its newest post at ``anchor``."""
        posts = json.loads(RECORDINGS.read_text())["results"]
        shift = anchor - max(parse_time(p["published_at"]) for p in posts)
        for post in posts:
            for key in ("published_at", "created_at"):
                if post.get(key):
                    post[key] = iso_z(parse_time(post[key]) + shift)
        with self._lock:
            self.posts = posts

    def publish(self, title: str, *, description: str | None = None, currencies: list[str] | None = None,
                     votes: dict[str, int] | None = None, kind: str = "news", domain: str = "sandbox.example",
                     published_at: datetime | None = None) -> dict[str, Any]:
        """Add a CryptoPanic post, newest first, with an id above every other."""
        if kind not in ("news", "media"):
            raise ValueError("kind must be 'news' or 'media'")
        when = published_at or self.now()
        with self._lock:
            post_id = max((p["id"] for p in self.posts), default=1) + 1
            slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
            post: dict[str, Any] = {
                "id": post_id, "slug": slug, "title": title, "published_at": iso_z(when),
                "created_at": iso_z(when), "kind": kind,
                "source": {"title": domain, "region": "en", "domain": domain, "type": "feed"},
                "original_url": f"https://{domain}/{slug.lower()}",
                "url": f"https://cryptopanic.com/news/{post_id}/{slug}",
                "votes": {name: int((votes or {}).get(name, 0)) for name in
                          ("positive", "negative", "important", "liked", "disliked", "lol", "toxic", "saved", "comments")},
            }
            if description is not None:
                post["description"] = description
            if currencies is not None:
                post["currencies"] = [{"code": c.upper(), "title": c.upper(), "slug": c.lower(),
                                       "url": f"https://cryptopanic.com/news/{c.lower()}/"} for c in currencies]
            self.posts.append(post)
            self.posts.sort(key=lambda p: (p["published_at"], p["id"]), reverse=True)
        return copy.deepcopy(post)

    def env(self, url: str, *, credentials: bool = True) -> dict[str, str]:
        return {settings.CRYPTOPANIC_URL: url, **({settings.CRYPTOPANIC_TOKEN: self.token} if credentials else {})}

    def install(self, server: SandboxServer) -> None:
        self._server = server
        server.route("GET", CRYPTOPANIC_POSTS.rstrip("/"), self._posts)
        server.route("POST", r"/_sandbox/human/cryptopanic", self._control)

    def _base_url(self, request: Request) -> str:
        host = request.headers.get("host")
        if host:
            return f"http://{host}"
        return self._server.url if self._server else ""

    def _posts(self, request: Request, m: re.Match) -> Response:
        query = {k: v[-1] for k, v in request.query.items()}
        token = query.get("auth_token")
        if not token:
            return _cryptopanic_refusal("Token not found")
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return _cryptopanic_refusal("Token not found")
        try:
            page = int(query.get("page") or 1)
        except ValueError:
            return Response(404, {"detail": "Invalid page."}, content_type=JSON_TYPE)
        with self._lock:
            posts = [p for p in self.posts if self._matches(p, query)]
        start = (page - 1) * self.page_size
        if page < 1 or (start >= len(posts) and page != 1):
            return Response(404, {"detail": "Invalid page."}, content_type=JSON_TYPE)
        chunk = posts[start:start + self.page_size]

        def link(number: int) -> str:
            params = {k: v for k, v in query.items() if k != "page"}
            if number > 1:
                params["page"] = str(number)
            return f"{self._base_url(request)}{CRYPTOPANIC_POSTS}?{urlencode(params)}"

        body = {
            "count": len(posts),
            "next": link(page + 1) if start + self.page_size < len(posts) else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": copy.deepcopy(chunk),
        }
        return Response(body=body, content_type=JSON_TYPE)

    @staticmethod
    def _matches(post: dict[str, Any], query: dict[str, str]) -> bool:
        kind = query.get("kind")
        if kind in ("news", "media") and post.get("kind") != kind:
            return False
        wanted = {c.strip().upper() for c in (query.get("currencies") or "").split(",") if c.strip()}
        if wanted and not wanted & {c["code"] for c in post.get("currencies") or ()}:
            return False
        votes = post.get("votes") or {}
        rule = query.get("filter")
        if rule == "bullish":
            return votes.get("positive", 0) > votes.get("negative", 0)
        if rule == "bearish":
            return votes.get("negative", 0) > votes.get("positive", 0)
        if rule in ("important", "saved", "lol"):
            return votes.get(rule, 0) > 0
        return True

    def _control(self, request: Request, m) -> Response:
        body = request.json()
        post = self.publish(body.pop("title"), published_at=parse_time(body.pop("published_at", None)), **body)
        return Response(body={"status": "ok", "post": post})
