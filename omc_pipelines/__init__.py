"""OMC Pipelines: the Dagster side (ledgers, sources, sensors, the sandbox)."""
