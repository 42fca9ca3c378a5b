"""The deployable stack under docker/, checked without Docker.

The files must agree with each other and with the code they deploy: every file compose mounts
exists, the statsd mapping turns every name the project and Airflow emit into the metrics the
Grafana dashboard queries, the GPU worker serves the queue the fine-tune DAG routes to, the
image pins the Airflow that requirements.txt pins, and no secret is written into any file.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance_airflow.finetune_factory import (
    GPU_POOL,
    GPU_QUEUE,
    GPU_RESOURCE,
    gpu_executor_config,
)

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yaml"
MAPPING_FILE = DOCKER / "statsd" / "mapping.yml"
DASHBOARD_FILE = DOCKER / "grafana" / "dashboards" / "governance.json"
POD_TEMPLATE_FILE = DOCKER / "kubernetes" / "gpu-pod-template.yaml"
HELM_VALUES_FILE = DOCKER / "kubernetes" / "values-gpu.yaml"
LOCAL_SECRETS_FILE = DOCKER / ".env"  # the operator's own copy of .env.example, never committed

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
    "mlflow",
    "statsd-exporter",
    "prometheus",
    "grafana",
}

# What the project emits below "governance.<dataset>." (the metrics spec), each with the
# Prometheus series the mapping must make of it, labels besides `dataset` included.
GOVERNANCE_PREFIX = "governance"
GOVERNANCE_COUNTERS = {"deadline_miss"}  # every other figure is a gauge
EMITTED_GOVERNANCE_METRICS: dict[str, tuple[str, dict[str, str]]] = {
    "rows_in": ("governance_rows_in", {}),
    "quarantined": ("governance_quarantined", {}),
    "quarantined_by_reason.json_error": (
        "governance_quarantined_by_reason",
        {"reason": "json_error"},
    ),
    "quarantined_by_reason.label_conflict": (
        "governance_quarantined_by_reason",
        {"reason": "label_conflict"},
    ),
    "quarantined_by_reason.text_length_outside_20_500": (
        "governance_quarantined_by_reason",
        {"reason": "text_length_outside_20_500"},
    ),
    "duplicates.exact": ("governance_duplicates", {"kind": "exact"}),
    "duplicates.near": ("governance_duplicates", {"kind": "near"}),
    "split.train": ("governance_split_items", {"split": "train"}),
    "split.val": ("governance_split_items", {"split": "val"}),
    "split.test": ("governance_split_items", {"split": "test"}),
    "alpha": ("governance_alpha", {}),
    "suspected_errors": ("governance_suspected_errors", {}),
    "suspected_error_rate": ("governance_suspected_error_rate", {}),
    "pii_items": ("governance_pii_items", {}),
    "pii_rate": ("governance_pii_rate", {}),
    "gate.passed": ("governance_gate_passed", {}),
    "gate.failed_checks": ("governance_gate_failed_checks", {}),
    "train.val_macro_f1": ("governance_train_val_macro_f1", {}),
    "train.test_macro_f1": ("governance_train_test_macro_f1", {}),
    "train.test_accuracy": ("governance_train_test_accuracy", {}),
    "train.samples_per_second": ("governance_train_samples_per_second", {}),
    "promotion.promoted": ("governance_promotion_promoted", {}),
    "deadline_miss": ("governance_deadline_miss_total", {}),
}
PLACEHOLDER_SAMPLES = {"reason": "json_error", "split": "train"}

# Airflow metrics the dashboard relies on, by their registry name; the statsd name is the
# registry's legacy name (prefix "airflow"), which carries dag_id, task_id, state in it.
AIRFLOW_METRICS_USED = (
    "dagrun.duration.success",
    "dagrun.duration.failed",
    "dagrun.schedule_delay",
    "task.duration",
    "ti.start",
    "ti.finish",
    "ti_failures",
    "ti_successes",
    "pool.open_slots",
    "pool.running_slots",
    "pool.queued_slots",
    "deadline_alerts.deadline_missed",
    "scheduler_heartbeat",
)
AIRFLOW_NAME_SAMPLES = {
    "dag_id": "govern_sms_spam",
    "task_id": "gate",
    "state": "up_for_retry",
    "pool_name": "gpu",
}
# The label each Airflow name variable becomes (the rest keep their name).
AIRFLOW_LABEL_OF = {"pool_name": "pool"}
# statsd-exporter calls timers (and histograms) "observer" in match_metric_type.
STATSD_TYPE_OF = {"timer": "observer"}

# Words that mark a secret in any case; KEY and AUTH only as upper-case variable suffixes
# (a Kubernetes toleration's `key` is none).
SECRET_NAME = re.compile(r"(?i:password|passwd|secret|token|fernet)|(^|_)KEY$|(^|_)AUTH$")
NOT_A_SECRET_NAME = re.compile(r"_(FILE|PATH|USER|USERS)$", re.I)
REQUIRED_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")
REFERENCE = re.compile(r"^(\$\$?\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}|\$[A-Za-z_]\w*)$")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]*:([^\s@]+)@", re.I)
SQL_LITERAL_PASSWORD = re.compile(r"PASSWORD\s+'", re.I)
ENV_ASSIGNMENT = re.compile(r"^\s*(?:export\s+|ENV\s+|ARG\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")

# PromQL's own words (aggregations, functions, modifiers) in the dashboard's expressions.
PROMQL_WORDS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "label_values",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


# --- loading ----------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def mapping_config() -> dict[str, Any]:
    return load_yaml(MAPPING_FILE)


@pytest.fixture(scope="module")
def mapping_rules(mapping_config: dict[str, Any]) -> list[dict[str, Any]]:
    return mapping_config["mappings"]


@pytest.fixture(scope="module")
def series(mapping_config: dict[str, Any]) -> dict[str, set[str]]:
    return produced_series(mapping_config)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def option(args: list[str], *names: str) -> str | None:
    """The value of a command-line option given as `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path -> host path (resolved against docker/) of each bind mount."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts[volume["target"]] = (DOCKER / volume["source"]).resolve()
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (DOCKER / source).resolve()
    return mounts


def named_volumes(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> volume name of each named volume."""
    found: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str) and not volume.startswith((".", "/")):
            name, target = volume.split(":")[:2]
            found[target] = name
    return found


def queues(service: Mapping[str, Any]) -> set[str]:
    value = option(argv(service.get("command")), "--queues", "-q")
    return set(value.split(",")) if value else set()


def airflow_services(services: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in services.items() if name.startswith("airflow-")}


# --- the statsd mapping, as statsd-exporter applies it -----------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    parts = ["([^.]+)" if part == "*" else re.escape(part) for part in pattern.split(".")]
    return re.compile(r"\.".join(parts) + "$")


def apply_mapping(
    rules: list[dict[str, Any]], name: str, statsd_type: str
) -> tuple[str, dict[str, str]] | None:
    """(metric name, labels) of the first rule that matches, like statsd-exporter's glob mode."""
    for rule in rules:
        if rule.get("match_metric_type", statsd_type) != statsd_type:
            continue
        found = glob_regex(rule["match"]).match(name)
        if found is None:
            continue
        if rule.get("action") == "drop":
            return None

        def expand(text: str, groups: tuple[str, ...] = found.groups()) -> str:
            return re.sub(r"\$\{?(\d+)\}?", lambda m: groups[int(m.group(1)) - 1], text)

        labels = {key: expand(str(value)) for key, value in (rule.get("labels") or {}).items()}
        return expand(rule["name"]), labels
    return None


def produced_series(config: Mapping[str, Any]) -> dict[str, set[str]]:
    """Every Prometheus series name the mapping can produce -> its label names. A timer
    (statsd type "observer") becomes a histogram (_bucket with `le`, _sum, _count) or a summary
    (the name with `quantile`, _sum, _count)."""
    default_observer = (config.get("defaults") or {}).get("observer_type", "summary")
    series: dict[str, set[str]] = {}
    for rule in config["mappings"]:
        name, labels = rule["name"], set(rule.get("labels") or {})
        if rule["match_metric_type"] != "observer":
            series[name] = labels
            continue
        if rule.get("observer_type", default_observer) == "histogram":
            series[f"{name}_bucket"] = labels | {"le"}
        else:
            series[name] = labels | {"quantile"}
        series.update({f"{name}_sum": labels, f"{name}_count": labels})
    return series


def concrete(template: str, dataset: str) -> str:
    """A name from governance.metrics.METRIC_NAMES with its <placeholders> filled in."""
    filled = template.replace("<dataset>", dataset)
    filled = re.sub(r"<(\w+)>", lambda m: PLACEHOLDER_SAMPLES.get(m.group(1), "sample"), filled)
    return filled if filled.startswith(f"{GOVERNANCE_PREFIX}.") else f"{GOVERNANCE_PREFIX}.{filled}"


def governance_statsd_env() -> tuple[str, str, str]:
    """The variables the project's statsd client reads its host, port and prefix from."""
    names = ("GOVERNANCE_STATSD_HOST", "GOVERNANCE_STATSD_PORT", "GOVERNANCE_STATSD_PREFIX")
    if importlib.util.find_spec("governance.metrics") is None:
        return names
    metrics = importlib.import_module("governance.metrics")
    attributes = ("HOST_ENV", "PORT_ENV", "PREFIX_ENV")
    host, port, prefix = (getattr(metrics, a, n) for a, n in zip(attributes, names, strict=True))
    return host, port, prefix


def governance_type(name: str) -> str:
    return "counter" if name.rsplit(".", 1)[-1] in GOVERNANCE_COUNTERS else "gauge"


def shipped_datasets() -> list[str]:
    contracts = sorted((REPO / "include" / "contracts").glob("*.yaml"))
    names = [load_yaml(path)["name"] for path in contracts]
    assert names, "no contract under include/contracts"
    return names


@functools.cache
def airflow_registry() -> dict[str, dict[str, Any]]:
    """Airflow's own metrics registry (names, types, legacy names) of the pinned version."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.origin is not None, "Airflow is not installed"
    path = Path(spec.origin).parent / "_shared/observability/metrics/metrics_template.yaml"
    return {metric["name"]: metric for metric in load_yaml(path)["metrics"]}


# --- PromQL ----------------------------------------------------------------------------------


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[str]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets") or []:
            yield target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        yield query["query"] if isinstance(query, dict) else str(query)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names in an expression: identifiers that are not PromQL words, labels,
    strings, ranges or template variables."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\w+", "", text)
    text = re.sub(r"label_values\(([^,()]*),\s*\w+\s*\)", r"label_values(\1)", text)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {word for word in words if word not in PROMQL_WORDS and not word.isdigit()}


def promql_selector_labels(expr: str) -> dict[str, set[str]]:
    """metric name -> the label names its selectors match on."""
    found: dict[str, set[str]] = {}
    for name, body in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body))
        found.setdefault(name, set()).update(labels)
    return found


def promql_grouping_labels(expr: str) -> set[str]:
    groups = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
    return {label.strip() for group in groups for label in group.split(",") if label.strip()}


def unknown_metrics(exprs: list[str], series: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """expression -> the metric names in it that the mapping does not produce."""
    missing = {expr: promql_metric_names(expr) - set(series) for expr in exprs}
    return {expr: names for expr, names in missing.items() if names}


# --- secrets -----------------------------------------------------------------------------------


def secret_named(key: str) -> bool:
    return bool(SECRET_NAME.search(key)) and not NOT_A_SECRET_NAME.search(key)


def yaml_secret_findings(data: Any, where: str) -> Iterator[str]:
    """Secret-named keys holding anything but a reference, anywhere in a YAML document."""
    if isinstance(data, dict):
        for key, value in data.items():
            literal = isinstance(value, str | int | float) and not REFERENCE.match(str(value))
            if secret_named(str(key)) and value != "" and literal:
                yield f"{where}: {key} holds a literal value"
            yield from yaml_secret_findings(value, f"{where}.{key}")
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from yaml_secret_findings(item, f"{where}[{index}]")


def text_secret_findings(text: str, where: str) -> Iterator[str]:
    """Inline URL credentials, secret-named assignments with values, SQL password literals."""
    for number, line in enumerate(text.splitlines(), start=1):
        for password in URL_CREDENTIALS.findall(line):
            if not REFERENCE.match(password):
                yield f"{where}:{number}: credentials written into a URL"
        assignment = ENV_ASSIGNMENT.match(line)
        if assignment and secret_named(assignment.group(1)):
            value = assignment.group(2).strip().strip("'\"")
            if value and not REFERENCE.match(value):
                yield f"{where}:{number}: {assignment.group(1)} is assigned a literal value"
        if SQL_LITERAL_PASSWORD.search(line):
            yield f"{where}:{number}: a password literal in SQL"


def secret_findings(root: Path) -> list[str]:
    findings: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name == ".env":
            continue
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(root))
        findings.extend(text_secret_findings(text, where))
        if path.suffix in {".yaml", ".yml"}:
            for document in yaml.safe_load_all(text):
                findings.extend(yaml_secret_findings(document, where))
    return findings


# --- compose: services, files, wiring ------------------------------------------------------


def test_compose_names_every_service(services: dict[str, Any]) -> None:
    assert set(services) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services)


def test_airflow_services_share_the_common_anchor() -> None:
    root = yaml.compose(COMPOSE_FILE.read_text(encoding="utf-8"))
    top = {key.value: value for key, value in root.value}
    common = top["x-airflow-common"]
    service_nodes = {key.value: value for key, value in top["services"].value}
    for name, node in service_nodes.items():
        if name.startswith("airflow-"):
            merged = [value for key, value in node.value if key.value == "<<"]
            assert any(value is common for value in merged), f"{name} does not merge it"


def test_every_file_compose_mounts_or_builds_from_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), f"{name}: no Dockerfile"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        missing = set(named_volumes(service).values()) - declared
        assert not missing, f"{name} uses undeclared volumes {missing}"


def test_config_files_named_in_commands_are_mounted(services: dict[str, Any]) -> None:
    for service, flag in (
        ("statsd-exporter", "--statsd.mapping-config"),
        ("prometheus", "--config.file"),
    ):
        path = option(argv(services[service].get("command")), flag)
        mounts = bind_mounts(services[service])
        assert path in mounts, f"{service}: {flag}={path} is not a mounted file"
        assert mounts[path].is_file()
        if service == "statsd-exporter":
            assert mounts[path] == MAPPING_FILE.resolve()


def test_grafana_provisioning_points_at_the_mounted_dashboards(
    services: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    mounts = bind_mounts(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yaml"))
        for source in load_yaml(path)["datasources"]
    ]
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yaml"))
        for provider in load_yaml(path)["providers"]
    ]
    assert sources and providers
    for provider in providers:
        folder = mounts.get(provider["options"]["path"])
        assert folder is not None, f"provider path {provider['options']['path']} is not mounted"
        assert (folder / DASHBOARD_FILE.name).is_file()
    uids = {source["uid"] for source in sources}
    used = {
        target["datasource"]["uid"]
        for panel in dashboard["panels"]
        for target in panel.get("targets") or []
    }
    assert used <= uids, f"dashboard queries data sources {used - uids}"
    assert any(source["url"] == "http://prometheus:9090" for source in sources)


def test_prometheus_scrapes_the_statsd_exporter(services: dict[str, Any]) -> None:
    config = load_yaml(DOCKER / "prometheus" / "prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job.get("static_configs", [])
        for target in group["targets"]
    }
    listen = option(argv(services["statsd-exporter"]["command"]), "--web.listen-address")
    assert listen is not None
    assert f"statsd-exporter:{listen.rsplit(':', 1)[1]}" in targets


def test_airflow_and_the_project_send_metrics_to_the_exporter(services: dict[str, Any]) -> None:
    udp = option(argv(services["statsd-exporter"]["command"]), "--statsd.listen-udp")
    assert udp is not None
    port = udp.rsplit(":", 1)[1]
    host_env, port_env, prefix_env = governance_statsd_env()
    for name, service in airflow_services(services).items():
        env = environment(service)
        assert env["AIRFLOW__METRICS__STATSD_ON"].lower() == "true", name
        assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter", name
        assert env["AIRFLOW__METRICS__STATSD_PORT"] == port, name
        assert env["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow", name
        assert env["AIRFLOW__METRICS__LEGACY_NAMES_ON"].lower() == "true", name
        assert (env[host_env], env[port_env]) == ("statsd-exporter", port), name
        assert env.get(prefix_env, GOVERNANCE_PREFIX) == GOVERNANCE_PREFIX, name


def test_airflow_runs_celery_on_postgres_and_redis(services: dict[str, Any]) -> None:
    for name, service in airflow_services(services).items():
        env = environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.match(
            r"postgresql\+psycopg2://airflow:.+@postgres:5432/airflow$",
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        ), name
        assert re.match(r"redis://:.+@redis:6379/\d+$", env["AIRFLOW__CELERY__BROKER_URL"]), name
        # psycopg 3: the installed driver SQLAlchemy 2.1 loads for Celery's results.
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://"), name
        assert env["HF_HUB_OFFLINE"] == "1", name
        data_root = env["GOVERNANCE_DATA_ROOT"]
        assert data_root in named_volumes(service), f"{name}: the data root is not a volume"
    roots = {
        named_volumes(service)[environment(service)["GOVERNANCE_DATA_ROOT"]]
        for service in airflow_services(services).values()
    }
    assert len(roots) == 1, f"the data root is not one shared volume: {roots}"


def test_airflow_init_migrates_applies_settings_and_creates_the_admin(
    services: dict[str, Any],
) -> None:
    init = services["airflow-init"]
    script = " ".join(argv(init.get("command")))
    assert "airflow db migrate" in script
    settings = re.search(r"python -m governance_airflow\.settings (\S+)", script)
    assert settings is not None
    assert settings.group(1) in dockerfile_copies().values()
    env = environment(init)
    assert REQUIRED_REFERENCE.match(env["AIRFLOW_ADMIN_PASSWORD"])
    # The simple auth manager's passwords file, written from the environment, read by the API
    # server from the volume both mount.
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    assert "AIRFLOW_ADMIN_PASSWORD" in script
    passwords_dir = str(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    assert passwords_dir in named_volumes(services["airflow-apiserver"])
    assert passwords_dir in named_volumes(init)


def test_gpu_worker_reserves_an_nvidia_gpu_and_serves_the_gpu_queue(
    services: dict[str, Any],
) -> None:
    worker = services["airflow-worker-gpu"]
    assert argv(worker["command"])[:2] == ["celery", "worker"]
    assert queues(worker) == {GPU_QUEUE}
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device.get("driver") == "nvidia"
        and device.get("count") == 1
        and "gpu" in device.get("capabilities", [])
        for device in devices
    ), devices
    pools = load_yaml(REPO / "airflow_settings.yaml")["airflow"]["pools"]
    slots = {pool["pool_name"]: int(pool["pool_slot"]) for pool in pools}[GPU_POOL]
    concurrency = option(argv(worker["command"]), "--concurrency", "-c")
    assert concurrency is not None and int(concurrency) <= slots


def test_a_dead_workers_tasks_are_failed_in_time_for_a_retry_within_two_minutes(
    services: dict[str, Any],
) -> None:
    from airflow.configuration import conf

    from governance_airflow.factory import DEFAULT_RETRY_DELAY

    # Airflow's default (300 s) kept a killed worker's task, and a train task's gpu pool slot,
    # for over 5 minutes; the first retry then waits its backoff, at most twice the delay.
    assert conf.getint("scheduler", "task_instance_heartbeat_timeout") == 300
    first_retry = 2 * DEFAULT_RETRY_DELAY.total_seconds()
    for name, service in airflow_services(services).items():
        timeout = int(environment(service)["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
        # the scheduler looks for them every 10 s
        assert timeout + 10 + first_retry <= 105, name


def test_default_worker_serves_only_airflows_default_queue(services: dict[str, Any]) -> None:
    from airflow.configuration import conf

    assert queues(services["airflow-worker"]) == {conf.get("operators", "default_queue")}
    assert "deploy" not in services["airflow-worker"]


def test_mlflow_serves_artifacts_from_postgres_and_tasks_find_it(services: dict[str, Any]) -> None:
    mlflow = services["mlflow"]
    args = argv(mlflow.get("entrypoint")) + argv(mlflow.get("command"))
    assert "--serve-artifacts" in args
    store = environment(mlflow)["MLFLOW_BACKEND_STORE_URI"]
    found = re.match(r"postgresql\+psycopg2://(\w+):.+@postgres:5432/(\w+)$", store)
    assert found is not None, store
    init_sql = (DOCKER / "postgres" / "init-mlflow-db.sh").read_text(encoding="utf-8")
    assert re.search(rf"CREATE ROLE {found.group(1)}\b", init_sql)
    assert re.search(rf"CREATE DATABASE {found.group(2)} OWNER {found.group(1)}\b", init_sql)
    assert any(
        target.startswith("/docker-entrypoint-initdb.d/")
        for target in bind_mounts(services["postgres"])
    )
    port = option(args, "--port")
    artifacts = option(args, "--artifacts-destination")
    for name, service in airflow_services(services).items():
        env = environment(service)
        connection = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
        assert connection["extra"]["tracking_uri"] == f"http://mlflow:{port}", name
        # On a tracking server the tasks upload artifacts through it (ensure_experiment leaves
        # the location to the server): a worker mounting the server's store would hide a
        # file-URI location that only works on one machine.
        assert "GOVERNANCE_MLFLOW_ARTIFACTS" not in env, name
        assert "mlflow-artifacts" not in named_volumes(service).values(), name
    assert "--serve-artifacts" in args
    assert artifacts in named_volumes(mlflow)


def test_bayesian_studies_live_in_a_database_of_their_own_every_worker_reaches(
    services: dict[str, Any],
) -> None:
    """Optuna and MLflow both keep an alembic_version table, so the studies cannot share
    MLflow's database; the init script creates theirs."""
    init_sql = (DOCKER / "postgres" / "init-mlflow-db.sh").read_text(encoding="utf-8")
    for name, service in airflow_services(services).items():
        connection = json.loads(environment(service)["AIRFLOW_CONN_OPTUNA_DEFAULT"])
        url = connection["extra"]["storage_url"]
        found = re.match(
            r"postgresql\+psycopg2://(\w+):\$\{\w+:\?[^}]*\}@postgres:5432/(\w+)$", url
        )
        assert found is not None, (name, url)
        assert found.group(2) != "mlflow", name
        assert re.search(rf"CREATE DATABASE {found.group(2)} OWNER {found.group(1)}\b", init_sql)


# --- secrets ---------------------------------------------------------------------------------


def test_every_secret_in_compose_is_a_required_environment_reference(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if secret_named(key):
                assert REQUIRED_REFERENCE.match(value), f"{name}: {key}={value!r}"
            for password in URL_CREDENTIALS.findall(value):
                assert REQUIRED_REFERENCE.match(password), f"{name}: {key} embeds a password"


def test_env_example_names_every_required_variable_and_holds_no_value() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))
    example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    )
    assert required <= set(assigned), f"missing from .env.example: {required - set(assigned)}"
    assert all(value.strip() == "" for value in assigned.values()), assigned


def test_no_file_under_docker_holds_a_secret() -> None:
    assert secret_findings(DOCKER) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("docker-compose.yaml", "services:\n  db:\n    environment:\n      DB_PASSWORD: hunter2\n"),
        ("conn.yaml", "url: postgresql://airflow:hunter2@postgres/airflow\n"),
        (".env.example", "AIRFLOW_FERNET_KEY=c2VjcmV0\n"),
        ("init.sh", "psql <<SQL\nCREATE ROLE x LOGIN PASSWORD 'hunter2';\nSQL\n"),
        ("Dockerfile", "FROM x\nENV API_TOKEN=abc123\n"),
    ],
)
def test_secret_scan_finds_an_injected_secret(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    assert len(secret_findings(tmp_path)) == 1


def test_secret_scan_accepts_references(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yaml").write_text(
        "x:\n  DB_PASSWORD: ${DB_PASSWORD:?set it}\n"
        "  URL: redis://:${REDIS_PASSWORD:?set it}@redis:6379/0\n"
        "  PASSWORDS_FILE: /opt/airflow/auth/passwords.json\n",
        encoding="utf-8",
    )
    (tmp_path / ".env.example").write_text("DB_PASSWORD=\n", encoding="utf-8")
    assert secret_findings(tmp_path) == []


# --- the image -------------------------------------------------------------------------------


def dockerfile_lines() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def dockerfile_copies() -> dict[str, str]:
    """Source in the build context -> destination in the image."""
    copies: dict[str, str] = {}
    for line in dockerfile_lines():
        if line.startswith("COPY "):
            parts = [part for part in line.split()[1:] if not part.startswith("--")]
            copies[parts[0]] = parts[1]
    return copies


def pinned(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_image_is_the_pinned_airflow_on_this_python() -> None:
    base = next(line for line in dockerfile_lines() if line.startswith("FROM "))
    found = re.match(r"FROM apache/airflow:(\S+)-python(\d+\.\d+)$", base)
    assert found is not None, base
    assert found.group(1) == pinned("apache-airflow")
    assert found.group(2) == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_image_installs_the_pinned_requirements_then_the_project_without_deps() -> None:
    copies = dockerfile_copies()
    runs = [line for line in dockerfile_lines() if line.startswith("RUN ")]
    requirements = copies["requirements.txt"]
    install = next(i for i, run in enumerate(runs) if f"-r {requirements}" in run)
    project = next(i for i, run in enumerate(runs) if "--no-deps -e" in run)
    assert install < project
    for source in ("dags", "plugins", "include", "airflow_settings.yaml", "pyproject.toml"):
        assert (REPO / source).exists()
        assert copies[source] == f"/opt/airflow/{source}", source
    env = " ".join(line for line in dockerfile_lines() if line.startswith("ENV "))
    assert re.search(r"\bHF_HUB_OFFLINE=1\b", env)


def test_build_context_sends_what_the_image_copies_and_nothing_else() -> None:
    rules = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert set(dockerfile_copies()) <= included
    assert "**/.env" in rules


# --- metrics: mapping and dashboard ----------------------------------------------------------


def test_mapping_rules_are_well_formed(mapping_rules: list[dict[str, Any]]) -> None:
    names: dict[str, set[str]] = {}
    for rule in mapping_rules:
        assert rule["match_metric_type"] in {"counter", "gauge", "observer"}, rule
        for part in rule["match"].split("."):
            assert part == "*" or "*" not in part, f"partial glob in {rule['match']}"
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["name"]), rule["name"]
        if rule["match_metric_type"] == "counter":
            assert rule["name"].endswith("_total"), rule["name"]
        labels = set(rule.get("labels") or {})
        assert names.setdefault(rule["name"], labels) == labels, f"{rule['name']}: label sets"


@pytest.mark.parametrize(("suffix", "expected"), sorted(EMITTED_GOVERNANCE_METRICS.items()))
def test_mapping_turns_each_governance_figure_into_a_dataset_labelled_metric(
    mapping_rules: list[dict[str, Any]], suffix: str, expected: tuple[str, dict[str, str]]
) -> None:
    for dataset in shipped_datasets():
        name = f"{GOVERNANCE_PREFIX}.{dataset}.{suffix}"
        result = apply_mapping(mapping_rules, name, governance_type(name))
        assert result == (expected[0], {"dataset": dataset, **expected[1]}), name


def test_mapping_covers_every_name_the_metrics_module_emits(
    mapping_rules: list[dict[str, Any]],
) -> None:
    metrics = pytest.importorskip("governance.metrics")
    templates = getattr(metrics, "METRIC_NAMES", None)
    if templates is None:
        pytest.skip("governance.metrics has no METRIC_NAMES")
    assert getattr(metrics, "DEFAULT_PREFIX", GOVERNANCE_PREFIX) == GOVERNANCE_PREFIX
    for dataset in shipped_datasets():
        for template in templates:
            name = concrete(template, dataset)
            result = apply_mapping(mapping_rules, name, governance_type(name))
            assert result is not None, f"{name} is not mapped"
            assert result[1].get("dataset") == dataset, name


@pytest.mark.parametrize("metric", AIRFLOW_METRICS_USED)
def test_mapping_labels_airflows_legacy_names(
    mapping_rules: list[dict[str, Any]], metric: str
) -> None:
    entry = airflow_registry()[metric]
    legacy = entry.get("legacy_name", "-")
    variables = entry.get("name_variables") or []
    template = entry["name"] if legacy == "-" else legacy
    name = "airflow." + template.format(**{var: AIRFLOW_NAME_SAMPLES[var] for var in variables})
    statsd_type = STATSD_TYPE_OF.get(entry["type"], entry["type"])
    result = apply_mapping(mapping_rules, name, statsd_type)
    assert result is not None, f"{name} ({entry['type']}) is not mapped"
    expected = {AIRFLOW_LABEL_OF.get(var, var): AIRFLOW_NAME_SAMPLES[var] for var in variables}
    assert expected.items() <= result[1].items(), name
    # Any further label (dagrun.duration's state) is a component of the name itself.
    assert set(result[1].values()) <= set(name.split(".")), name


def test_mapping_passes_unrelated_names_through(mapping_rules: list[dict[str, Any]]) -> None:
    assert apply_mapping(mapping_rules, "governance.sms_spam.rows_in", "counter") is None
    assert apply_mapping(mapping_rules, "other.sms_spam.rows_in", "gauge") is None
    assert apply_mapping(mapping_rules, "airflow.dagrun.duration.success", "observer") is None


def test_dashboard_loads_with_unique_panels(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all("gridPos" in panel for panel in dashboard["panels"])
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("dag run duration", "failures and retries", "gate", "promotion", "deadline"):
        assert topic in titles, topic


def test_dashboard_queries_only_metrics_the_mapping_produces(
    series: dict[str, set[str]], dashboard: dict[str, Any]
) -> None:
    exprs = list(dashboard_queries(dashboard))
    assert exprs
    assert unknown_metrics(exprs, series) == {}
    for expr in exprs:
        for name, labels in promql_selector_labels(expr).items():
            assert labels <= series[name], f"{expr}: {name} has no label {labels - series[name]}"
        used = set().union(*(series[name] for name in promql_metric_names(expr)))
        assert promql_grouping_labels(expr) <= used, expr


def test_dashboard_shows_every_governance_figure(
    mapping_rules: list[dict[str, Any]], dashboard: dict[str, Any]
) -> None:
    used = set().union(*(promql_metric_names(expr) for expr in dashboard_queries(dashboard)))
    governance = {rule["name"] for rule in mapping_rules if rule["match"].startswith("governance.")}
    assert governance <= used, governance - used


def test_promql_check_catches_a_misspelt_metric(series: dict[str, set[str]]) -> None:
    good = 'sum by (dataset) (increase(governance_deadline_miss_total{dataset=~"$dataset"}[1d]))'
    bad = 'governence_rows_in{dataset="sms_spam"} / governance_rows_in'
    assert unknown_metrics([good, bad], series) == {bad: {"governence_rows_in"}}


# --- Kubernetes --------------------------------------------------------------------------------


def test_gpu_pod_template_matches_the_tasks_pod_override() -> None:
    pod = load_yaml(POD_TEMPLATE_FILE)
    override = gpu_executor_config()["pod_override"].spec.containers[0]
    assert pod["kind"] == "Pod"
    container = pod["spec"]["containers"][0]
    assert container["name"] == override.name == "base"
    assert str(container["resources"]["limits"][GPU_RESOURCE]) == "1"
    assert set(override.resources.limits) <= set(container["resources"]["limits"])
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"] for volume in pod["spec"]["volumes"]}
    assert mounts[env["GOVERNANCE_DATA_ROOT"]] in volumes
    assert pod["spec"]["nodeSelector"]
    assert any(t["key"] == GPU_RESOURCE for t in pod["spec"]["tolerations"])


def test_helm_values_add_a_gpu_worker_set_for_the_gpu_queue() -> None:
    values = load_yaml(HELM_VALUES_FILE)
    sets = values["workers"]["celery"]["sets"]
    gpu_sets = [item for item in sets if item["queue"] == GPU_QUEUE]
    assert len(gpu_sets) == 1
    assert str(gpu_sets[0]["resources"]["limits"][GPU_RESOURCE]) == "1"
    env = {item["name"]: item.get("value") or item.get("valueFrom") for item in values["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["GOVERNANCE_OPTUNA_STORAGE"]["secretKeyRef"]["key"] == "storage_url"
