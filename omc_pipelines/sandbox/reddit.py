"""Reddit in the sandbox, one of the Human ledger's sources (see ``human.py``).

Served from ``recordings/human/reddit/<sub>.json``: ``/r/<sub>/new.json`` listings (``limit``,
``after``), one stickied post in each, behind a bearer token from ``POST /api/v1/access_token``
(client credentials with HTTP basic auth; 401 on wrong credentials; tokens last ``expires_in`` =
86400 s). A missing, wrong or revoked token answers 401.

- ``POST /_sandbox/human/reddit`` ``{"subreddit", "title", "selftext"?, "author"?, "score"?, "upvote_ratio"?, "num_comments"?, "stickied"?, "published_at"?}``
- ``POST /_sandbox/human/reddit/access`` ``{"approved": false}``: every listing answers 403
  (Reddit has not approved the client's API access); ``true`` restores it.
- ``POST /_sandbox/human/reddit/revoke``: every issued token stops working (401).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from omc_pipelines import settings
from omc_pipelines.sandbox.news_feeds import slug
from omc_pipelines.sandbox.server import Request, Response, SandboxServer
from omc_pipelines.sandbox.times import parse_time

RECORDINGS = Path(__file__).with_name("recordings") / "human" / "reddit"
SUBREDDITS = ("CryptoCurrency", "Bitcoin", "ethereum", "solana")
REDDIT_CLIENT_ID = "sandbox-reddit-client"
REDDIT_CLIENT_SECRET = "sandbox-reddit-secret-8d41e7"
REDDIT_USERNAME = "omc_sandbox"
TOKEN_LIFETIME = 86400
REDDIT_DEFAULT_LIMIT = 25
REDDIT_MAX_LIMIT = 100
JSON_TYPE = "application/json; charset=utf-8"


def _reddit_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"message": message, "error": status}, headers or {}, content_type=JSON_TYPE)


class RedditSandbox:
    """Reddit's listings, OAuth tokens and routes."""

    def __init__(self, now: Callable[[], datetime], *, client_id: str = REDDIT_CLIENT_ID,
                 client_secret: str = REDDIT_CLIENT_SECRET):
        self._lock = threading.Lock()
        self.now = now
        self.client_id = client_id
        self.client_secret = client_secret
        self.listings: dict[str, list[dict[str, Any]]] = {}

    def reset(self, anchor: datetime) -> None:
        """Back to the recordings, the newest post at ``anchor``; access approved; no tokens issued."""
        listings = {sub: json.loads((RECORDINGS / f"{sub}.json").read_text())["data"]["children"]
                    for sub in SUBREDDITS}
        newest = max(c["data"]["created_utc"] for children in listings.values() for c in children)
        seconds = anchor.timestamp() - newest
        for children in listings.values():
            for child in children:
                child["data"]["created_utc"] = float(round(child["data"]["created_utc"] + seconds))
                child["data"]["created"] = child["data"]["created_utc"]
        with self._lock:
            self.listings = listings
            self.approved = True
            self.tokens: dict[str, float] = {}  # bearer token -> expiry (epoch seconds)
            self.tokens_issued = 0
            self.user_agents: list[str] = []
            self._counter = 0

    def publish(self, subreddit: str, title: str, *, selftext: str = "", author: str = "sandbox_user",
                       score: int = 1, upvote_ratio: float = 1.0, num_comments: int = 0, stickied: bool = False,
                       published_at: datetime | None = None) -> dict[str, Any]:
        """Add a post to a subreddit's /new (a new subreddit starts empty)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}", subreddit):
            raise ValueError(f"{subreddit!r} is not a subreddit name")
        when = (published_at or self.now()).timestamp()
        with self._lock:
            self._counter += 1
            post_id = f"1s{self._counter:05d}"
            permalink = f"/r/{subreddit}/comments/{post_id}/{slug(title).replace('-', '_')[:50]}/"
            data = {
                "subreddit": subreddit, "selftext": selftext, "title": title, "name": f"t3_{post_id}",
                "subreddit_name_prefixed": f"r/{subreddit}", "upvote_ratio": upvote_ratio, "ups": score, "downs": 0,
                "score": score, "is_self": True, "domain": f"self.{subreddit}", "created": float(round(when)),
                "created_utc": float(round(when)), "id": post_id, "author": author, "num_comments": num_comments,
                "permalink": permalink, "url": f"https://www.reddit.com{permalink}", "stickied": stickied,
                "over_18": False, "locked": False, "pinned": False,
            }
            children = self.listings.setdefault(subreddit, [])
            children.append({"kind": "t3", "data": data})
            children.sort(key=lambda c: c["data"]["created_utc"], reverse=True)
        return copy.deepcopy(data)

    def set_access(self, approved: bool) -> None:
        with self._lock:
            self.approved = bool(approved)

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"reddit": {sub: len(children) for sub, children in self.listings.items()},
                    "reddit_approved": self.approved, "reddit_tokens_issued": self.tokens_issued,
                    "reddit_tokens_valid": len(self.tokens)}

    def env(self, url: str, *, credentials: bool = True) -> dict[str, str]:
        env = {settings.REDDIT_URL: url, settings.REDDIT_AUTH_URL: url}
        if credentials:
            env.update({settings.REDDIT_CLIENT_ID: self.client_id, settings.REDDIT_CLIENT_SECRET: self.client_secret,
                        settings.REDDIT_USERNAME: REDDIT_USERNAME})
        return env

    def install(self, server: SandboxServer) -> None:
        server.route("POST", r"/api/v1/access_token", self._access_token)
        server.route("GET", r"/r/(?P<sub>[A-Za-z0-9_]+)/new(?:\.json)?", self._listing)
        server.route("POST", r"/_sandbox/human/reddit", self._control)
        server.route("POST", r"/_sandbox/human/reddit/access", self._control_access)
        server.route("POST", r"/_sandbox/human/reddit/revoke", self._control_revoke)

    def _access_token(self, request: Request, m: re.Match) -> Response:
        self.user_agents.append(request.headers.get("user-agent", ""))
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = ""
        if scheme.lower() != "basic" or not (
            secrets.compare_digest(client_id.encode(), self.client_id.encode())
            and secrets.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            return _reddit_error(401, "Unauthorized")
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return Response(200, {"error": "unsupported_grant_type"}, content_type=JSON_TYPE)
        token = "sbx-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME
            self.tokens_issued += 1
        return Response(body={"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME, "scope": "*"},
                        content_type=JSON_TYPE)

    def _listing(self, request: Request, m: re.Match) -> Response:
        self.user_agents.append(request.headers.get("user-agent", ""))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
            approved = self.approved
        if expiry is None or expiry < time.time():
            return _reddit_error(401, "Unauthorized", {"WWW-Authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        if not approved:
            return _reddit_error(403, "Forbidden")
        sub = m["sub"]
        with self._lock:
            known = {s.lower(): s for s in self.listings}
            if sub.lower() not in known:
                return _reddit_error(404, "Not Found")
            children = copy.deepcopy(self.listings[known[sub.lower()]])
        query = {k: v[-1] for k, v in request.query.items()}
        limit = max(1, min(int(query.get("limit") or REDDIT_DEFAULT_LIMIT), REDDIT_MAX_LIMIT))
        start = 0
        if query.get("after"):
            names = [c["data"]["name"] for c in children]
            start = names.index(query["after"]) + 1 if query["after"] in names else len(children)
        chunk = children[start:start + limit]
        more = start + limit < len(children)
        body = {"kind": "Listing", "data": {
            "after": chunk[-1]["data"]["name"] if more and chunk else None, "dist": len(chunk), "modhash": "",
            "geo_filter": "", "children": chunk, "before": None,
        }}
        headers = {"x-ratelimit-remaining": "99.0", "x-ratelimit-used": "1", "x-ratelimit-reset": "540"}
        return Response(body=body, headers=headers, content_type=JSON_TYPE)

    def _control(self, request: Request, m) -> Response:
        body = request.json()
        post = self.publish(body.pop("subreddit"), body.pop("title"),
                            published_at=parse_time(body.pop("published_at", None)), **body)
        return Response(body={"status": "ok", "post": post})

    def _control_access(self, request: Request, m) -> Response:
        body = request.json()
        if not isinstance(body.get("approved"), bool):
            raise ValueError("approved must be true or false")
        self.set_access(body["approved"])
        return Response(body={"status": "ok", "approved": body["approved"]})

    def _control_revoke(self, request: Request, m) -> Response:
        self.revoke_tokens()
        return Response(body={"status": "ok"})
