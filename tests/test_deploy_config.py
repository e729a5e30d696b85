"""deploy/ says what the instance of the deployment test says.

deploy/postgres/dagster.yaml is the reference: the production-topology test runs it. The
embedded ./dagster.yaml, Docker Compose's instance (deploy/compose) and the Helm chart's values
(deploy/helm) must give the same queue, run limits, pools, retries and run monitoring; each
keeps its storage and launcher, checked here too, with the names the pieces share (env
variables, image, module, ports). Docker, Compose, Kubernetes and helm are not on these
machines: the files are read and compared, and every instance they make is loaded by Dagster
itself (PostgreSQL ones on a scratch database), so that a typo fails here and not on a server.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator

from omc_pipelines import settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
REFERENCE = DEPLOY / "postgres" / "dagster.yaml"
EMBEDDED = ROOT / "dagster.yaml"
COMPOSE = DEPLOY / "compose"
HELM = DEPLOY / "helm"
MODULE = "omc_pipelines.definitions"
LOCATION = "omc_pipelines"
# The chart's default global.dagsterHome, where it mounts the instance it renders.
CHART_DAGSTER_HOME = "/opt/dagster/dagster_home"
# What the chart renders itself from its own keys: additionalInstanceConfig must not say them again.
CHART_RENDERED = {"scheduler", "schedule_storage", "run_launcher", "run_storage", "event_log_storage",
                  "run_coordinator", "compute_logs", "python_logs", "run_retries", "sensors", "schedules",
                  "telemetry", "retention", "concurrency", "storage"}


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def env_names(path: Path) -> list[str]:
    return [line.split("=", 1)[0] for line in path.read_text().splitlines() if re.match(r"[A-Z_]+=", line)]


def env_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"[A-Z_]+=", line))


def policy(config: dict) -> dict:
    """What every deployment must share, with Dagster's defaults filled in where a file may
    leave one out (run_retries: tests/test_definitions.py pins that block's exact keys)."""
    coordinator = config["run_coordinator"]
    return {
        "run_coordinator": {"module": coordinator["module"], "class": coordinator["class"],
                            "config": coordinator.get("config", {})},
        "concurrency": config["concurrency"],
        "run_retries": {"enabled": False, "max_retries": 0, "retry_on_asset_or_op_failure": True,
                        **config.get("run_retries", {})},
        "run_monitoring": config["run_monitoring"],
        "telemetry": config.get("telemetry"),
    }


def differences(expected, actual, path: str = "") -> list[str]:
    """Every key path at which two configurations differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in expected or key not in actual:
                found.append(f"{where}: only in {'the reference' if key in expected else 'the copy'}")
            else:
                found += differences(expected[key], actual[key], where)
        return found
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def helm_instance(values: dict) -> dict:
    """The dagster.yaml the official chart renders from these values, for the keys deploy/helm
    uses (the chart's templates configmap-instance.yaml and helpers/instance/*.tpl)."""
    pg = values["postgresql"]
    postgres_db = {"postgres_db": {
        "username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"], "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams", {}), "scheme": pg["postgresqlScheme"],
    }}
    daemon = values["dagsterDaemon"]
    custom = daemon["runCoordinator"]["config"]["customRunCoordinator"]
    retries = daemon["runRetries"]
    pools, runs = values["concurrency"]["pools"], values["concurrency"]["runs"]
    return {
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage",
                        "config": postgres_db},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": postgres_db},
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": postgres_db},
        "run_coordinator": {"module": custom["module"], "class": custom["class"], "config": custom["config"]},
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"],
                        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"]},
        "concurrency": {
            "pools": {"default_limit": pools["defaultLimit"], "granularity": pools["granularity"]},
            "runs": {"max_concurrent_runs": runs["maxConcurrentRuns"],
                     "tag_concurrency_limits": [dict(limit) for limit in runs["tagConcurrencyLimits"]]},
        },
        "telemetry": values["telemetry"],
        **values["additionalInstanceConfig"],
    }


def compose_code_command() -> list[str]:
    return load_yaml(COMPOSE / "docker-compose.yaml")["services"]["code"]["command"]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def secrets_script() -> str:
    """deploy/helm/secrets.example.sh with its continued lines joined."""
    return re.sub(r"\\\n\s*", "", (HELM / "secrets.example.sh").read_text())


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def docker_home() -> str:
    return re.search(r"DAGSTER_HOME=(\S+)", dockerfile()).group(1)


def loaded(config: dict, home: Path) -> DagsterInstance:
    """The instance Dagster makes of ``config`` (schema, defaults, cross-checks), its local
    files under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config).replace(".omc/dagster", str(home)).replace(f"{docker_home()}/storage", str(home))
    (home / "dagster.yaml").write_text(text)
    return DagsterInstance.from_config(str(home))


# --- the same policy everywhere -------------------------------------------------------------

def instance_config(name: str) -> dict:
    if name == "helm":
        return helm_instance(load_yaml(HELM / "values.yaml"))
    return load_yaml({"reference": REFERENCE, "embedded": EMBEDDED, "compose": COMPOSE / "dagster.yaml"}[name])


@pytest.mark.parametrize("name", ["embedded", "compose", "helm"])
def test_every_deployment_has_the_reference_queue_limits_pools_retries_and_monitoring(name):
    assert differences(policy(instance_config("reference")), policy(instance_config(name))) == []


def test_the_comparison_sees_a_limit_that_drifted_in_a_copy():
    reference = load_yaml(REFERENCE)
    drifted = copy.deepcopy(reference)
    drifted["concurrency"]["pools"]["default_limit"] = 2
    drifted["run_monitoring"].pop("free_slots_after_run_end_seconds")
    assert differences(policy(reference), policy(drifted)) == [
        "concurrency.pools.default_limit: 1 != 2",
        "run_monitoring.free_slots_after_run_end_seconds: only in the reference",
    ]
    # And through the chart's keys: the values file is read, not assumed.
    values = load_yaml(HELM / "values.yaml")
    values["concurrency"]["runs"]["tagConcurrencyLimits"][0]["limit"] = 3
    values["dagsterDaemon"]["runRetries"]["maxRetries"] = 1
    found = differences(policy(reference), policy(helm_instance(values)))
    assert [line.split(":")[0] for line in found] == ["concurrency.runs.tag_concurrency_limits",
                                                      "run_retries.max_retries"]


def test_the_reference_says_what_the_jobs_rely_on():
    """The numbers the code and the other tests assume, named once here: a pool of one each
    (SEC fair access, one writer of CoinSpot's nonce), retries only where a job asks, one
    backfill run at a time, runs whose worker died failed and their slots freed, no resuming."""
    config = load_yaml(REFERENCE)
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert {"key": "dagster/backfill", "limit": 1} in config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert config["run_retries"] == {"enabled": True, "max_retries": 0}
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["max_resume_run_attempts"] == 0
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 300
    assert monitoring["max_runtime_seconds"] > 0  # the default launcher cannot tell a dead run from a slow one
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_coordinator"]["config"]["max_user_code_failure_retries"] > 0


# --- storage and launcher per target --------------------------------------------------------

def test_storage_is_postgresql_from_the_environment_or_a_secret_and_the_embedded_one_sqlite():
    for path in (REFERENCE, COMPOSE / "dagster.yaml"):
        assert load_yaml(path)["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert set(load_yaml(EMBEDDED)["storage"]) == {"sqlite"}
    values = load_yaml(HELM / "values.yaml")
    # The chart's own PostgreSQL off, its generated password secret off: ours, made by the script.
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert "postgresqlPassword" not in values["postgresql"]
    script = secrets_script()
    assert f"secret generic {values['global']['postgresqlSecretName']}" in script
    assert "--from-file=postgresql-password=" in script


def test_each_target_has_its_launcher():
    assert "run_launcher" not in load_yaml(REFERENCE)  # Dagster's default: a process per run
    assert "run_launcher" not in load_yaml(EMBEDDED)
    docker = load_yaml(COMPOSE / "dagster.yaml")["run_launcher"]
    assert (docker["module"], docker["class"]) == ("dagster_docker", "DockerRunLauncher")
    compose = load_yaml(COMPOSE / "docker-compose.yaml")
    assert docker["config"]["network"] == compose["networks"]["omc"]["name"]
    for service in ("webserver", "daemon", "code"):
        assert "omc" in compose["services"][service]["networks"]
    volume = compose["volumes"]["dagster_storage"]["name"]
    assert docker["config"]["container_kwargs"]["volumes"] == [f"{volume}:{docker_home()}/storage"]
    values = load_yaml(HELM / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagster-user-deployments"]["deployments"][0]["includeConfigInLaunchedRuns"] == {"enabled": True}
    # The chart's templates render these themselves, each only when the key says so: the one
    # copy of run monitoring comes from additionalInstanceConfig, the coordinator from the custom slot.
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] is False
    assert daemon["runCoordinator"]["enabled"] is True and daemon["runCoordinator"]["type"] == "CustomRunCoordinator"
    assert values["concurrency"]["enabled"] is True
    assert not set(values["additionalInstanceConfig"]) & CHART_RENDERED


def test_every_setting_and_secret_reaches_the_runs_under_the_same_names():
    secrets = {settings.env_name(name) for name in settings.SECRETS}
    compose_env = env_names(COMPOSE / ".env.example")
    forwarded = load_yaml(COMPOSE / "dagster.yaml")["run_launcher"]["config"]["env_vars"]
    assert len(forwarded) == len(set(forwarded))
    # Compose: every name of the env file but the database container's own reaches every run.
    assert set(forwarded) == set(compose_env) - {"POSTGRES_PASSWORD"}
    assert secrets | {"DAGSTER_POSTGRES_URL"} <= set(forwarded)
    # Kubernetes: the same names, secrets in the secret, the rest in plain env; Dagster's storage
    # password is the chart's own (DAGSTER_PG_PASSWORD), so DAGSTER_POSTGRES_URL has no use there.
    deployment = load_yaml(HELM / "values.yaml")["dagster-user-deployments"]["deployments"][0]
    helm_secrets = env_names(HELM / "secrets.example.env")
    assert set(helm_secrets) == secrets
    assert not set(deployment["env"]) & secrets
    assert set(deployment["env"]) | set(helm_secrets) == set(forwarded) - {"DAGSTER_POSTGRES_URL"}
    assert deployment["envSecrets"] == [{"name": "omc-secrets"}]
    assert "secret generic omc-secrets --from-env-file=deploy/helm/secrets.env" in secrets_script()
    for value in deployment["env"].values():
        assert isinstance(value, str)  # `off` unquoted is YAML's false, which a container env refuses


def test_the_examples_hold_placeholders_only_and_the_real_files_are_never_committed():
    secrets = {settings.env_name(name) for name in settings.SECRETS}
    for path in (COMPOSE / ".env.example", HELM / "secrets.example.env"):
        for name, value in env_values(path).items():
            if name in secrets or name.endswith(("PASSWORD", "_URL")):
                assert value == "" or "CHANGE_ME" in value, f"{path.name}: {name} looks like a real value"
    assert ".env" in (COMPOSE / ".gitignore").read_text().splitlines()
    assert "secrets.env" in (HELM / ".gitignore").read_text().splitlines()
    # The image's build context holds what the image copies, and nothing else (no env file, no venv).
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore and allowed == {"pyproject.toml", "README.md", "omc_pipelines", "omc_trading"}
    copied = {source.rstrip("/") for line in dockerfile().splitlines() if line.startswith("COPY ")
              for source in line.split()[1:-1]}
    assert copied == allowed


# --- one image, one module, one location ----------------------------------------------------

def test_the_image_module_location_port_and_home_are_the_same_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["dg"]["project"]["code_location_target_module"] == MODULE
    root_workspace = load_yaml(ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    assert (root_workspace["module_name"], root_workspace["location_name"]) == (MODULE, LOCATION)

    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile(), re.M).group(1))
    code = compose_code_command()
    port = option(cmd, "-p")
    assert cmd[:3] == code[:3] == ["dagster", "code-server", "start"]
    assert option(cmd, "-m") == option(code, "-m") == MODULE
    assert option(cmd, "--location-name") == option(code, "--location-name") == LOCATION
    assert option(code, "-p") == port and f"EXPOSE {port}" in dockerfile()
    grpc = load_yaml(COMPOSE / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert grpc == {"host": "code", "port": int(port), "location_name": LOCATION}
    one_server = load_yaml(DEPLOY / "postgres" / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert one_server == {"host": "127.0.0.1", "port": int(port), "location_name": LOCATION}
    deployment = load_yaml(HELM / "values.yaml")["dagster-user-deployments"]["deployments"][0]
    assert deployment["codeServerArgs"] == ["-m", MODULE] and deployment["port"] == int(port)

    # One image, named for the project at its version, the one each run starts from.
    version = project["project"]["version"]
    compose = load_yaml(COMPOSE / "docker-compose.yaml")
    image = compose["x-image"]
    assert re.fullmatch(r"\$\{OMC_IMAGE:-(.+)\}", image).group(1) == f"omc-pipelines:{version}"
    assert compose["services"]["code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    for service in ("code", "migrate", "webserver", "daemon"):
        assert compose["services"][service]["image"] == image
    assert f"-t omc-pipelines:{version} ." in dockerfile()
    assert deployment["image"]["repository"].endswith("/omc-pipelines") and deployment["image"]["tag"] == version

    # DAGSTER_HOME: the image's, where Compose mounts its instance and the chart mounts its own.
    assert docker_home() == CHART_DAGSTER_HOME
    assert f"./dagster.yaml:{docker_home()}/dagster.yaml:ro" in compose["x-dagster"]["volumes"]


def test_the_image_installs_the_launchers_at_the_pinned_dagster_set():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pin = next(dep for dep in project["dependencies"] if dep.startswith("dagster-postgres==")).split("==")[1]
    extras = project["optional-dependencies"]
    assert extras["docker"] == [f"dagster-docker=={pin}"] and extras["k8s"] == [f"dagster-k8s=={pin}"]
    assert not any(dep.startswith(("dagster-docker", "dagster-k8s")) for dep in extras["test"])
    assert "pip install --compile '.[docker,k8s]'" in dockerfile()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile(), re.M)
    # The chart at the version of the pinned Dagster set, wherever the install command is given.
    dagster = next(dep for dep in project["dependencies"] if dep.startswith("dagster==")).split("==")[1]
    for text in ((HELM / "values.yaml").read_text(), (ROOT / "README.md").read_text()):
        assert set(re.findall(r"dagster/dagster --version (\S+)", text)) == {dagster}


# --- Dagster loads each instance ------------------------------------------------------------

def test_the_embedded_instance_file_is_valid_as_it_stands():
    """Dagster's own check of ./dagster.yaml (schema, storage, concurrency against the queue),
    without making its SQLite files; its policy loads below, on PostgreSQL."""
    config, instance_class = dagster_instance_config(str(ROOT))
    assert instance_class is None and set(config["storage"]) == {"sqlite"}


@pytest.fixture
def scratch_postgres(dagster_postgres_url, monkeypatch):
    """A database for Dagster's storage (conftest's, dropped at the end); DAGSTER_POSTGRES_URL points at it."""
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_postgres_url)
    return sa.make_url(dagster_postgres_url)


@pytest.mark.integration
@pytest.mark.postgres
def test_every_instance_loads_on_a_scratch_postgresql_database(scratch_postgres, tmp_path, monkeypatch):
    compose = instance_config("compose")
    # dagster-docker is not installed by the tests: its block is checked above, the rest loads.
    compose.pop("run_launcher")
    helm = instance_config("helm")
    # The chart's storage (host, user, password from the secret) pointed at the scratch database.
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        helm[key]["config"]["postgres_db"].update(
            hostname=scratch_postgres.host, port=scratch_postgres.port or 5432,
            username=scratch_postgres.username, db_name=scratch_postgres.database)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", scratch_postgres.password or "")
    # The embedded instance's policy, on the same storage (its SQLite block is checked above).
    embedded = {**instance_config("embedded"), "storage": instance_config("reference")["storage"]}
    for name, config in (("reference", instance_config("reference")), ("compose", compose), ("helm", helm),
                         ("embedded", embedded)):
        instance = loaded(config, tmp_path / name)
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage", name
            assert isinstance(instance.run_coordinator, QueuedRunCoordinator), name
            queue = instance.get_concurrency_config().run_queue_config
            assert queue.max_concurrent_runs == 10, name
            assert queue.max_user_code_failure_retries == 6, name
            assert [limit["key"] for limit in queue.tag_concurrency_limits] == [
                "dagster/backfill", "dagster/schedule_name"], name
            assert instance.global_op_concurrency_default_limit == 1, name
            assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 3600, name
            assert instance.run_retries_enabled and instance.run_retries_max_retries == 0, name
            assert instance.run_retries_retry_on_asset_or_op_failure is True, name
            assert instance.get_runs() == [], name  # the storage answers
        finally:
            instance.dispose()
