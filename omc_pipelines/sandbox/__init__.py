"""The offline stand-in for every external source (see the design).

    with Sandbox() as sandbox:          # or: omc sandbox --port 8765
        os.environ.update(sandbox.env())
        sandbox.coinspot.set_price("btc", last="140000")
        sandbox.inject(Fault("/pubapi/v2/latest", "429", retry_after=1))
        sandbox.coinspot_account.inject(AccountFault("timeout_after_accept"))  # CoinSpot's private API
"""

from __future__ import annotations

from datetime import datetime

from omc_pipelines import settings
from omc_pipelines.sandbox.coinspot import CoinSpotMarket
from omc_pipelines.sandbox.coinspot_private import AccountFault, CoinSpotAccount
from omc_pipelines.sandbox.defillama import DefiLlamaSandbox
from omc_pipelines.sandbox.human import HumanSandbox
from omc_pipelines.sandbox.sec import SecEdgarSandbox
from omc_pipelines.sandbox.zendesk import HelpCentre
from omc_pipelines.sandbox.server import FAULT_KINDS, Fault, Response, SandboxServer

__all__ = ["FAULT_KINDS", "AccountFault", "Fault", "Sandbox"]


class Sandbox:
    def __init__(self, port: int = 0, *, human_anchor: datetime | None = None):
        """``human_anchor``: where the human sources' newest recorded item goes (the start of its
        UTC hour); by default the current hour."""
        self.server = SandboxServer(port=port)
        self.coinspot = CoinSpotMarket()
        self.coinspot.install(self.server)
        # The private API on the same host, filling orders at the public API's prices.
        self.coinspot_account = CoinSpotAccount(self.coinspot)
        self.coinspot_account.install(self.server)
        self.sec = SecEdgarSandbox()
        self.sec.install(self.server)
        self.zendesk = HelpCentre()
        self.zendesk.install(self.server)
        self.defillama = DefiLlamaSandbox()
        self.defillama.install(self.server)
        self.human = HumanSandbox(anchor=human_anchor)
        self.human.install(self.server)
        self.server.route("POST", r"/_sandbox/reset", self._reset)

    @property
    def url(self) -> str:
        return self.server.url

    def env(self, credentials: bool = True) -> dict[str, str]:
        """The environment that points every source of the pipeline here; with the
        sandbox's own fake credentials unless ``credentials`` is false (to see the
        "not configured" state)."""
        hosts = (settings.COINSPOT_URL, settings.ZENDESK_URL, settings.SEC_DATA_URL, settings.SEC_ARCHIVES_URL,
                 settings.DEFILLAMA_URL, settings.DEFILLAMA_STABLECOINS_URL)
        env = {**{name: self.url for name in hosts}, **self.human.env(self.url, credentials=credentials)}
        if credentials:
            # The sandbox, like the SEC, refuses requests without a contact in the User-Agent.
            env[settings.SEC_USER_AGENT] = "OMC Pipelines sandbox sandbox@example.com"
        return env

    def inject(self, fault: Fault) -> None:
        self.server.inject(fault)

    def reset(self) -> None:
        self.server.clear_faults()
        self.server.requests.clear()
        self.server.arrivals.clear()
        fresh = CoinSpotMarket(now=self.coinspot.anchor)  # the same trades at the same times: never re-dated
        self.coinspot.summary, self.coinspot.listed, self.coinspot.trades = fresh.summary, fresh.listed, fresh.trades
        self.coinspot.error_in_200.clear()
        self.coinspot_account.reset()
        self.sec.reset()
        self.zendesk.reset()
        self.defillama.reset()
        self.human.reset()

    def _reset(self, request, match):
        self.reset()
        return Response(body={"status": "ok"})

    def start(self) -> Sandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
