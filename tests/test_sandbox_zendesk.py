"""The sandbox's Zendesk Help Centre (omc_pipelines/sandbox/zendesk.py), talked to with plain httpx.

The API in Zendesk's shape with both paging styles, the HTML pages in a Zendesk
theme's shape, the modes (API refused; lists rendered by JavaScript; a bot challenge)
and publishing, by Python and by the control routes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from omc_pipelines.sandbox.server import serve
from omc_pipelines.sandbox.zendesk import RECORDINGS, HelpCentre
from omc_pipelines.sources.announcements import parse_article_list, parse_article_page

pytestmark = pytest.mark.integration

CATEGORY = 115000579994
API = "/api/v2/help_center/en-us"
LIST = f"{API}/categories/{CATEGORY}/articles.json"
NEWEST_FIRST = {"sort_by": "created_at", "sort_order": "desc"}
RECORDED = json.loads((RECORDINGS / "articles.json").read_text())["articles"]
DRAFT = next(a for a in RECORDED if a["draft"])
LISTINGS, COIN_UPDATES, MAINTENANCE, PLATFORM = 360001711234, 360001711254, 360001711274, 360001711294


@pytest.fixture
def box():
    centre = HelpCentre()
    with serve(centre) as server, httpx.Client(base_url=server.url, timeout=5.0) as client:
        yield server, centre, client


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _all_pages(client: httpx.Client, first: httpx.Response, next_of) -> list[dict]:
    rows, response, pages = [], first, 0
    while True:
        pages += 1
        assert pages < 50
        body = response.json()
        rows += body["articles"]
        link = next_of(body)
        if not link:
            return rows
        response = client.get(link)


# --- the API -------------------------------------------------------------------------------


def test_offset_pages_in_zendesk_shape(box):
    server, centre, client = box
    response = client.get(LIST, params={**NEWEST_FIRST, "per_page": 10})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"articles", "count", "next_page", "page", "page_count", "per_page", "previous_page",
                         "sort_by", "sort_order"}
    assert (body["count"], body["page"], body["page_count"], body["per_page"]) == (25, 1, 3, 10)
    assert body["previous_page"] is None
    assert body["next_page"] == f"{server.url}{LIST}?page=2&per_page=10&sort_by=created_at&sort_order=desc"
    article = body["articles"][0]
    assert set(article) == set(RECORDED[0])
    assert article["html_url"].startswith(f"{server.url}/hc/en-us/articles/{article['id']}-")
    assert article["url"] == f"{server.url}{API}/articles/{article['id']}.json"
    rows = _all_pages(client, response, lambda b: b["next_page"])
    assert len(rows) == len({r["id"] for r in rows}) == 25
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    assert DRAFT["id"] not in {r["id"] for r in rows}


def test_cursor_pages_in_zendesk_shape(box):
    server, centre, client = box
    response = client.get(LIST, params={**NEWEST_FIRST, "page[size]": 10})
    body = response.json()
    assert set(body) == {"articles", "meta", "links"}
    assert body["meta"]["has_more"] is True and body["links"]["prev"] is None
    assert body["links"]["next"].startswith(f"{server.url}{LIST}?page%5Bafter%5D=")
    rows = _all_pages(client, response, lambda b: b["links"]["next"] if b["meta"]["has_more"] else None)
    offset = client.get(LIST, params={**NEWEST_FIRST, "per_page": 100}).json()["articles"]
    assert [r["id"] for r in rows] == [r["id"] for r in offset]
    second = client.get(body["links"]["next"]).json()
    back = client.get(second["links"]["prev"]).json()
    assert [r["id"] for r in back["articles"]] == [r["id"] for r in body["articles"]]


@pytest.mark.parametrize(("params", "size"), [({"per_page": 500}, 100), ({"page[size]": 500}, 100), ({}, 30)])
def test_page_size_is_capped_at_100(box, params, size):
    server, centre, client = box
    for i in range(80):  # more than a page can hold
        centre.publish(f"Bulk notice {i}", created_at=datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(hours=i))
    body = client.get(LIST, params={**NEWEST_FIRST, **params}).json()
    assert len(body["articles"]) == size


@pytest.mark.parametrize("params", [
    {"per_page": 0}, {"per_page": "many"}, {"page": 0}, {"sort_by": "votes"}, {"sort_order": "sideways"},
    {"page[size]": 5, "page[after]": "bm90LWEtY3Vyc29y"}, {"page[size]": 5, "page[after]": "%%%"},
])
def test_bad_parameters_are_400(box, params):
    response = box[2].get(LIST, params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidPaginationParameter"


def test_past_the_last_page_is_empty(box):
    body = box[2].get(LIST, params={"per_page": 10, "page": 9}).json()
    assert (body["articles"], body["next_page"]) == ([], None)


def test_default_order_is_position_promoted_first(box):
    rows = box[2].get(LIST).json()["articles"]
    assert rows[0]["promoted"] is True and rows[0]["title"].startswith("Scam warning")
    assert [r["created_at"] for r in rows[1:]] == sorted((r["created_at"] for r in rows[1:]), reverse=True)


def test_sections_single_articles_and_what_is_not_found(box):
    server, centre, client = box
    rows = client.get(f"{API}/sections/{LISTINGS}/articles.json", params=NEWEST_FIRST).json()["articles"]
    assert len(rows) == 6 and {r["section_id"] for r in rows} == {LISTINGS}
    assert client.get(f"{API}/articles.json").json()["count"] == 25
    one = client.get(f"{API}/articles/{rows[0]['id']}.json").json()["article"]
    assert one == rows[0]
    for path in (f"{API}/articles/{DRAFT['id']}.json", f"{API}/categories/1/articles.json",
                 f"{API}/sections/1/articles.json", f"/api/v2/help_center/fr/categories/{CATEGORY}/articles.json"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"error": "RecordNotFound", "description": "Not found"})


def test_recorded_times_move_forward_by_whole_days():
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    first, again = HelpCentre(now=now).articles(), HelpCentre(now=now + timedelta(minutes=5)).articles()
    assert first == again  # deterministic within the day
    newest = _iso(first[0]["created_at"])
    assert now - timedelta(days=1) < newest <= now
    recorded = {a["id"]: _iso(a["created_at"]) for a in RECORDED}
    shifts = {_iso(a["created_at"]) - recorded[a["id"]] for a in first}
    [shift] = shifts  # one block: the spacing between articles is the recorded one
    assert shift % timedelta(days=1) == timedelta(0)
    assert all(_iso(a["updated_at"]) >= _iso(a["created_at"]) for a in first)
    live = HelpCentre().articles()[0]
    assert datetime.now(timezone.utc) - _iso(live["created_at"]) < timedelta(days=1)


# --- modes -----------------------------------------------------------------------------------


def test_api_refused_by_python_and_by_the_control_route(box):
    server, centre, client = box
    centre.set_mode(api="refused")
    response = client.get(LIST)
    assert response.status_code == 403 and response.json()["error"] == "Forbidden"
    assert client.get(f"/hc/en-us/categories/{CATEGORY}").status_code == 200  # the pages still answer
    assert client.post("/_sandbox/zendesk/mode", json={"api": "ok"}).json() == {"status": "ok", "api": "ok",
                                                                             "html": "plain"}
    assert client.get(LIST).status_code == 200
    assert client.get("/_sandbox/zendesk/mode").json() == {"api": "ok", "html": "plain"}


@pytest.mark.parametrize("body", [{"api": "maybe"}, {"html": "flash"}, {"theme": "dark"}])
def test_bad_modes_are_400(box, body):
    response = box[2].post("/_sandbox/zendesk/mode", json=body)
    assert response.status_code == 400
    assert box[1].modes() == {"api": "ok", "html": "plain"}


def test_plain_pages_in_the_themes_shape(box):
    server, centre, client = box
    response = client.get(f"/hc/en-us/categories/{CATEGORY}-Announcements")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = parse_article_list(response.text, str(response.url))
    assert len(page.articles) == 5 + 5 + 5 + 5  # five a section on the category page
    assert {a.section_id for a in page.articles} == {LISTINGS, COIN_UPDATES, MAINTENANCE, PLATFORM}
    assert len(page.section_urls) == 3  # "See all" where a section holds more
    section = parse_article_list(client.get(page.section_urls[0]).text, page.section_urls[0])
    assert len(section.articles) == 6 and section.next_url is None
    assert {a.section_id for a in section.articles} == {LISTINGS}
    article = centre.articles()[0]
    response = client.get(f"/hc/en-us/articles/{article['id']}")
    parsed = parse_article_page(response.text, str(response.url))
    assert (parsed.title, parsed.created_at, parsed.body_html) == (
        article["title"], _iso(article["created_at"]), article["body"])
    assert '<li class="article-list-item article-promoted">' in client.get(page.section_urls[-1]).text
    for path in (f"/hc/en-us/articles/{DRAFT['id']}", "/hc/en-us/categories/1", "/hc/en-us/sections/1"):
        assert client.get(path).status_code == 404


def test_javascript_mode_leaves_the_list_to_a_script(box):
    server, centre, client = box
    centre.set_mode(html="javascript")
    html = client.get(f"/hc/en-us/categories/{CATEGORY}").text
    page = parse_article_list(html, server.url)
    assert (page.articles, page.section_urls) == ([], [])
    assert "article-list-item" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
    data = json.loads(re.search(r'id="hc-list-data">(.*?)</script>', html, re.S).group(1))
    assert sum(len(s["articles"]) for s in data["sections"]) == 20
    assert "article-list-item" in html and "setTimeout(render" in html  # the script renders the same markup
    article = centre.articles()[0]
    assert parse_article_page(client.get(f"/hc/en-us/articles/{article['id']}").text, "u").created_at is not None


def test_challenge_mode_lets_through_only_the_scripts_cookie(box):
    server, centre, client = box
    client.post("/_sandbox/zendesk/mode", json={"html": "challenge"})
    response = client.get(f"/hc/en-us/categories/{CATEGORY}")
    assert response.status_code == 403
    assert response.headers["cf-mitigated"] == "challenge"
    assert "<title>Just a moment...</title>" in response.text
    assert client.get(f"/hc/en-us/categories/{CATEGORY}", headers={"Cookie": "cf_clearance=guess"}).status_code == 403
    # What the page's script computes, done by hand: the hex of each part times the factor.
    parts = [int(n) for n in re.search(r"var parts = \[([\d, ]+)\]", response.text).group(1).split(",")]
    factor = int(re.search(r"n \* (\d+)\)", response.text).group(1))
    cookie = "".join(format(n * factor, "x") for n in parts)
    passed = client.get(f"/hc/en-us/categories/{CATEGORY}", headers={"Cookie": f"other=1; cf_clearance={cookie}"})
    assert passed.status_code == 200 and len(parse_article_list(passed.text, server.url).articles) == 20
    assert client.get(LIST).status_code == 200  # the API is not behind the challenge


# --- publishing --------------------------------------------------------------------------------


def test_publish_puts_the_article_first_everywhere(box):
    server, centre, client = box
    ids = {a["id"] for a in centre.articles(include_drafts=True)}
    article = centre.publish("New Coin Listing: Foo Token (FOO)", "<p>Foo.</p>", labels=["listing"])
    assert article["id"] > max(ids) and article["id"] not in ids
    assert article["html_url"] == f"{server.url}/hc/en-us/articles/{article['id']}-New-Coin-Listing-Foo-Token-FOO"
    assert datetime.now(timezone.utc) - _iso(article["created_at"]) < timedelta(seconds=5)
    assert (article["section_id"], article["draft"], article["label_names"]) == (LISTINGS, False, ["listing"])
    newest = client.get(LIST, params={**NEWEST_FIRST, "per_page": 1}).json()
    assert newest["articles"][0] == article and newest["count"] == 26
    category = parse_article_list(client.get(f"/hc/en-us/categories/{CATEGORY}").text, server.url)
    assert category.articles[0].id == article["id"]
    page = parse_article_page(client.get(article["html_url"]).text, article["html_url"])
    assert page.body_html == "<p>Foo.</p>"


def test_publish_by_the_control_route(box):
    server, centre, client = box
    when = "2020-01-02T03:04:05Z"
    response = client.post("/_sandbox/zendesk/articles", json={
        "title": "Scheduled maintenance: BTC wallet", "body_html": "<p>Back soon.</p>", "created_at": when,
        "section_id": MAINTENANCE,
    })
    assert response.status_code == 200
    article = response.json()["article"]
    assert (article["created_at"], article["section_id"]) == (when, MAINTENANCE)
    assert article["html_url"].startswith(server.url)
    oldest = client.get(LIST, params={"sort_by": "created_at", "sort_order": "asc", "per_page": 1}).json()
    assert oldest["articles"][0]["id"] == article["id"]  # backdated: last in newest-first order
    for bad in ({"title": ""}, {"body_html": "no title"}, {"title": "x", "section_id": 1}, {"title": "x", "pin": 1}):
        assert client.post("/_sandbox/zendesk/articles", json=bad).status_code == 400


def test_reset_restores_the_recordings_and_modes(box):
    server, centre, client = box
    centre.publish("Something new")
    centre.set_mode(api="refused", html="challenge")
    centre.reset()
    assert centre.modes() == {"api": "ok", "html": "plain"}
    assert len(centre.articles()) == 25
