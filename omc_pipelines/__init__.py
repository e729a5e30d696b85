"""OMC Pipelines: the Dagster side (ledgers, sources, sensors, the sandbox)."""

import warnings

# BackfillPolicy.single_run() is what makes a year of candles one run; Dagster
# calls it beta and says so at every import, which only buries real warnings.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
# The same for the code references each asset's page links to (definitions.py).
warnings.filterwarnings("ignore", message="(Class|Function) `(LocalFileCodeReference|CodeReferencesMetadataValue|with_source_code_references)` is currently in beta")
