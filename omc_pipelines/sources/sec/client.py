"""The EDGAR client: submissions from the data host, documents from the archives host.

EDGAR's manners, which the client keeps:

- Every request declares a User-Agent naming the requester and a contact email.
  The client refuses to exist without one (``SecUserAgentError``), before any
  request is sent.
- At most 10 requests a second across everything a user runs: the data and the
  archives hosts share one rate budget (one ``HttpSource`` name, ``"sec"``).
- When the SEC throttles, it usually answers 403, not 429, and blocks the address
  for about ten minutes. Both count as throttling: retried with backoff, then
  ``SourceThrottled``, after which the process sends nothing to the SEC for a
  cool-down (``cooldown`` seconds) instead of hammering a blocked address.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone

import httpx

from omc_pipelines.settings import SEC_USER_AGENT
from omc_pipelines.sources.http import USER_AGENT, HttpSource, SourceThrottled
from omc_pipelines.sources.sec.common import SOURCE, normalise_cik
from omc_pipelines.sources.sec.eight_k import EightK, check_is_8k, parse_8k
from omc_pipelines.sources.sec.form4 import Form4, form4_xml_path, parse_form4
from omc_pipelines.sources.sec.submissions import Filing, Submissions, archive_path, parse_submissions

USER_AGENT_EXAMPLE = "OMC Pipelines ops@example.com"


class SecUserAgentError(ValueError):
    """No usable User-Agent for the SEC: it must name the requester and give a contact email."""


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def check_user_agent(user_agent: str | None) -> str:
    """The User-Agent, stripped, if the SEC's fair-access policy accepts its shape;
    else ``SecUserAgentError`` saying how to set one."""
    value = (user_agent or "").strip()
    if not value:
        problem = "none is set"
    elif any(c in value for c in "\r\n"):
        problem = "it spans several lines"
    elif not _EMAIL.search(value):
        problem = f"{value!r} has no contact email"
    elif not re.search(r"[A-Za-z]{2,}", _EMAIL.sub("", value)):
        problem = f"{value!r} gives an email but no name"
    else:
        return value
    raise SecUserAgentError(
        f"SEC EDGAR requires a User-Agent naming you and giving a contact email, and {problem}: "
        f'set {SEC_USER_AGENT}, e.g. {SEC_USER_AGENT}="{USER_AGENT_EXAMPLE}"'
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


# After the SEC throttles, nothing is sent to it from this process until the time here
# (time.monotonic), per source name: its block lasts about ten minutes, and every
# request inside it only prolongs the wait.
_cooldowns: dict[str, float] = {}
_cooldowns_lock = threading.Lock()


class SecEdgar:
    """EDGAR's submissions (data host) and archives (www host), one rate budget for both."""

    def __init__(self, data: HttpSource, archives: HttpSource, *, cooldown: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        for http in (data, archives):
            # What goes out: the source's own header, else the layer's generic agent (which the SEC refuses).
            check_user_agent(_header(http.headers, "User-Agent") or USER_AGENT)
        self.data, self.archives = data, archives
        self.cooldown = cooldown
        self._clock = clock

    @classmethod
    def create(
        cls,
        data_url: str,
        archives_url: str,
        user_agent: str | None,
        rate_limit: float = 10.0,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        *,
        cooldown: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        budget: float | None = None,
    ) -> SecEdgar:
        """Refuses (``SecUserAgentError``) before building anything if the agent is unusable."""
        agent = check_user_agent(user_agent)
        common = dict(
            name=SOURCE, timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit,
            throttle_statuses=(429, 403), sleep=sleep, transport=transport, budget=budget,
        )
        data = HttpSource(base_url=data_url, headers={"User-Agent": agent, "Accept": "application/json"}, **common)
        archives = HttpSource(
            base_url=archives_url,
            headers={"User-Agent": agent, "Accept": "text/html, application/xml, text/xml, */*"},
            **common,
        )
        return cls(data, archives, cooldown=cooldown, clock=clock)

    def close(self) -> None:
        self.data.close()
        self.archives.close()

    def __enter__(self) -> SecEdgar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, http: HttpSource, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        with _cooldowns_lock:
            until = _cooldowns.get(http.name, 0.0)
        now = self._clock()
        if now < until:
            raise SourceThrottled(
                http.name, http.shown_url(path),
                f"cooling down after the SEC throttled this process (403/429): {until - now:.0f} s left, nothing sent",
            )
        try:
            return http.get(path, headers=headers)
        except SourceThrottled:
            if self.cooldown > 0:
                with _cooldowns_lock:
                    _cooldowns[http.name] = max(_cooldowns.get(http.name, 0.0), self._clock() + self.cooldown)
            raise

    def submissions(
        self,
        cik: str | int,
        etag: str | None = None,
        last_modified: str | datetime | None = None,
        forms: Iterable[str] | None = None,
    ) -> Submissions:
        """The filer's recent filings; a conditional GET when ``etag``/``last_modified``
        come from the previous poll, so that an unchanged poll costs a 304 and no parsing."""
        cik10 = normalise_cik(cik)
        path = f"/submissions/CIK{cik10}.json"
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if isinstance(last_modified, datetime):
            last_modified = email.utils.format_datetime(last_modified.astimezone(timezone.utc), usegmt=True)
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response = self._get(self.data, path, headers)
        new_etag = response.headers.get("ETag")
        new_modified = response.headers.get("Last-Modified")
        if response.status_code == 304:
            return Submissions(cik10, [], new_etag or etag, new_modified or last_modified, True)
        filings = parse_submissions(
            self.data.decode_json(response, path), self.data.shown_url(path),
            archives_url=self.archives.base_url, forms=forms, cik=cik10,
        )
        return Submissions(cik10, filings, new_etag, new_modified, False)

    def document(self, filing: Filing) -> str:
        """The text of the filing's primary document (for Form 4, the XSL-rendered HTML)."""
        if not filing.primary_document:
            raise ValueError(f"filing {filing.accession_number} has no primary document")
        path = archive_path(filing.cik, filing.accession_number, filing.primary_document)
        return self._get(self.archives, path).text

    def eight_k(self, filing: Filing) -> EightK:
        document = self.document(filing)
        check_is_8k(document, filing, self.archives.shown_url(
            archive_path(filing.cik, filing.accession_number, filing.primary_document)))
        return parse_8k(document)

    def form4(self, filing: Filing) -> Form4:
        """The ownership report behind a Form 4 filing, read from its raw XML."""
        document = form4_xml_path(filing.primary_document)
        if not document.lower().endswith(".xml"):
            raise ValueError(f"filing {filing.accession_number} ({filing.form}) has no XML primary document")
        path = archive_path(filing.cik, filing.accession_number, document)
        response = self._get(self.archives, path)
        return parse_form4(response.content, self.archives.shown_url(path))
