"""SEC EDGAR: a filer's submissions, 8-K documents and Form 4 ownership reports.

One module per concern:

- ``client``: ``SecEdgar``, over the shared HTTP layer, with EDGAR's manners (a
  User-Agent with a contact email, one rate budget for both hosts, a cool-down after
  the SEC throttles);
- ``submissions``: ``parse_submissions`` and the ``Filing`` rows;
- ``timezones``: ``acceptance_to_utc``, the trap in EDGAR's ``Z``-labelled times;
- ``eight_k``: ``parse_8k``, crypto mentions and Strategy's bitcoin purchases;
- ``form4``: ``parse_form4``, ownership reports from their raw XML;
- ``common``: what they share (the payload reader, CIKs, numbers as filed).

The parse functions are pure: they take what EDGAR sent and return typed rows, or raise
``SourcePayloadError`` naming what is wrong. Nothing here touches the database. What the
rest of the project uses is re-exported here.
"""

from omc_pipelines.sources.sec.client import SecEdgar, SecUserAgentError, check_user_agent
from omc_pipelines.sources.sec.common import normalise_cik
from omc_pipelines.sources.sec.eight_k import BitcoinPurchase, EightK, parse_8k
from omc_pipelines.sources.sec.form4 import Form4, Owner, Transaction, form4_xml_path, parse_form4
from omc_pipelines.sources.sec.submissions import Filing, Submissions, archive_path, filings_of, parse_submissions
from omc_pipelines.sources.sec.timezones import acceptance_to_utc, detect_convention

__all__ = [
    "BitcoinPurchase", "EightK", "Filing", "Form4", "Owner", "SecEdgar", "SecUserAgentError", "Submissions",
    "Transaction", "acceptance_to_utc", "archive_path", "check_user_agent", "detect_convention", "filings_of",
    "form4_xml_path", "normalise_cik", "parse_8k", "parse_form4", "parse_submissions",
]
