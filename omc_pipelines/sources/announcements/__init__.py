"""CoinSpot's announcements (its Zendesk Help Centre): three ways in, pure parsers, a classifier.

One module per concern: ``api`` (the Help Center JSON), ``pages`` (the HTML list and
article pages, and the walk over them), ``browser`` (the Playwright path), ``client``
(:class:`CoinSpotAnnouncements`, the paths in order), ``classifier`` (what an
announcement is) and ``common`` (the rows and what the paths share). What the rest of
the project uses is re-exported here.

The paths, tried in this order by :class:`CoinSpotAnnouncements`:

1. ``api``: the Help Center API, ``GET /api/v2/help_center/{locale}/categories/{id}/articles.json``
   sorted by ``created_at`` descending, paged with ``page``/``next_page`` (offset, the
   default) or ``page[size]``/``meta.has_more``/``links.next`` (cursor), and only as far
   as ``since`` and ``limit`` need. Drafts are skipped.
2. ``html``: the category page ``/hc/{locale}/categories/{id}`` read with CSS selectors
   over an HTML5 parser (selectolax), ``li.article-list-item a.article-list-link``, plus
   the first page of every section its "See all" links lead to, then each needed article
   page (``/hc/{locale}/articles/{id}``) for the time and the body. When the API is
   refused (anonymous access off, a firewall).
3. ``browser``: the same pages through a real Chromium (Playwright's sync API, imported
   only in ``browser``), when the HTML answer is a bot challenge (or a 403, which may be one) or the
   list is rendered by JavaScript: what a browser gets past. A help centre that answers
   the HTML path badly (5xx, throttling, a timeout, an answer too large or malformed) is
   not asked again by a browser, which would only read the same bad answer, slowly. Each
   page the browser reads has a deadline (``DEADLINE_TIMEOUTS`` times its timeout) within
   the client's budget, and a size cap (the HTTP layer's ``max_bytes``): a page past it is
   never laid out or read back. Article pages are asked first as plain requests through
   the HTTP layer, with the browser's cookies. The rendered DOM goes through the same parsers.

Any :class:`SourceError` on one path (refused, throttled after the retries, unavailable,
a payload not in the documented shape, no list in the page) moves on to the next; the
paths that failed and why are kept (``Fetched.failures``), and when every path fails
:class:`AnnouncementsUnavailable` names each with its reason. Programming errors are not
swallowed. Zendesk's ids are positive integers: an article or section id of zero or less
is a payload error.

Times on the HTML paths. The list pages carry no dates, so each article page is read:
its ``<time datetime>`` elements (Zendesk themes render ``created_at``, and ``edited_at``
when the article was edited); ``created_at`` is the earliest of them, ``updated_at`` the
latest when there are two. A theme that shows only the edit time makes ``created_at``
late, never early. A page with no ``<time datetime>`` at all is dated by the detection
time (the client's clock) and says so in ``Article.dated_from == "detected"``. Article
pages are read newest id first (Zendesk's ids grow with time; promoted old articles head
the lists but not this order) and reading stops at ``limit`` or at the first article
older than ``since``.

``since`` is inclusive on every path: an article created exactly at ``since`` is returned
again, and the idempotent upsert downstream makes that harmless, where a strict bound
would lose a second article published in the same second.
"""

from omc_pipelines.sources.announcements.api import HelpCenterApi, parse_articles_page
from omc_pipelines.sources.announcements.browser import HelpCenterBrowser
from omc_pipelines.sources.announcements.classifier import IMPACT, KINDS, Classification, classify
from omc_pipelines.sources.announcements.client import (
    PATHS,
    AnnouncementsUnavailable,
    CoinSpotAnnouncements,
    Fetched,
    PathFailure,
)
from omc_pipelines.sources.announcements.common import (
    DEFAULT_CATEGORY,
    DEFAULT_LOCALE,
    Article,
    ArticleList,
    ArticlePage,
    ListedArticle,
)
from omc_pipelines.sources.announcements.pages import (
    HelpCenterPages,
    is_bot_challenge,
    parse_article_list,
    parse_article_page,
)

__all__ = [
    "DEFAULT_CATEGORY", "DEFAULT_LOCALE", "IMPACT", "KINDS", "PATHS", "AnnouncementsUnavailable", "Article",
    "ArticleList", "ArticlePage", "Classification", "CoinSpotAnnouncements", "Fetched", "HelpCenterApi",
    "HelpCenterBrowser", "HelpCenterPages", "ListedArticle", "PathFailure", "classify",
    "is_bot_challenge", "parse_article_list", "parse_article_page", "parse_articles_page",
]
