"""Governance figures as statsd gauges, so operators see every dataset's nights on a dashboard.

Names live under ``<prefix>.<dataset>.`` (prefix ``governance`` by default); the statsd exporter's
mapping in docker/statsd/ turns the dataset into a label. Sending is UDP and fire-and-forget: a
missing collector never fails a run.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from statsd import StatsClient

if TYPE_CHECKING:
    from governance.manifest import VersionManifest

log = logging.getLogger(__name__)

HOST_ENV, PORT_ENV, PREFIX_ENV = (
    "GOVERNANCE_STATSD_HOST",
    "GOVERNANCE_STATSD_PORT",
    "GOVERNANCE_STATSD_PREFIX",
)
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_PREFIX = "127.0.0.1", 8125, "governance"

# Every name this project emits, below the prefix; <dataset>, <reason>, <split> vary.
METRIC_NAMES = (
    "<dataset>.rows_in",
    "<dataset>.quarantined",
    "<dataset>.quarantined_by_reason.<reason>",
    "<dataset>.duplicates.exact",
    "<dataset>.duplicates.near",
    "<dataset>.split.<split>",
    "<dataset>.alpha",
    "<dataset>.suspected_errors",
    "<dataset>.suspected_error_rate",
    "<dataset>.pii_items",
    "<dataset>.pii_rate",
    "<dataset>.gate.passed",
    "<dataset>.gate.failed_checks",
    "<dataset>.train.val_macro_f1",
    "<dataset>.train.test_macro_f1",
    "<dataset>.train.test_accuracy",
    "<dataset>.train.samples_per_second",
    "<dataset>.promotion.promoted",
    "<dataset>.deadline_miss",
)


@lru_cache(maxsize=8)
def _client(host: str, port: int, prefix: str) -> StatsClient:
    return StatsClient(host=host, port=port, prefix=prefix)


def client() -> StatsClient:
    """The statsd client for the current environment (host, port and prefix from env)."""
    host = os.environ.get(HOST_ENV, DEFAULT_HOST)
    port = int(os.environ.get(PORT_ENV, DEFAULT_PORT))
    return _client(host, port, os.environ.get(PREFIX_ENV, DEFAULT_PREFIX))


def slug(text: str) -> str:
    """A metric name segment: lower case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "unknown"


def governance_figures(manifest: VersionManifest) -> dict[str, float]:
    """The figures of one version's manifest, keyed by metric name below the prefix."""
    counts, audit, gate = manifest.counts, manifest.audit, manifest.gate
    figures: dict[str, float] = {
        "rows_in": counts.rows_in,
        "quarantined": counts.quarantined.total,
        "duplicates.exact": counts.duplicates.exact,
        "duplicates.near": counts.duplicates.near,
        **{f"split.{name}": split.items for name, split in counts.splits.items()},
    }
    for reason, rows in counts.quarantined.by_reason.items():
        key = f"quarantined_by_reason.{slug(reason)}"
        figures[key] = figures.get(key, 0) + rows
    if audit.agreement and audit.agreement.krippendorff_alpha is not None:
        figures["alpha"] = audit.agreement.krippendorff_alpha
    if audit.label_errors:
        figures["suspected_errors"] = audit.label_errors.suspected
        if audit.label_errors.rate is not None:
            figures["suspected_error_rate"] = audit.label_errors.rate
    if manifest.privacy:
        figures["pii_items"] = manifest.privacy.items_with_pii
        figures["pii_rate"] = manifest.privacy.pii_rate
    figures["gate.passed"] = 1 if gate.status == "passed" else 0
    figures["gate.failed_checks"] = len(gate.failed)
    return {f"{slug(manifest.dataset)}.{name}": float(value) for name, value in figures.items()}


def training_figures(dataset: str, outcome: Mapping[str, Any]) -> dict[str, float]:
    """A fine-tune's evaluation, throughput and promotion decision."""
    metrics = outcome["metrics"]
    figures = {
        "train.val_macro_f1": metrics["best_val_macro_f1"],
        "train.test_macro_f1": metrics["test_macro_f1"],
        "train.test_accuracy": metrics["test_accuracy"],
    }
    if outcome.get("samples_per_second") is not None:
        figures["train.samples_per_second"] = outcome["samples_per_second"]
    if outcome.get("registered") is not None:
        figures["promotion.promoted"] = 1 if outcome["promoted"] else 0
    return {f"{slug(dataset)}.{name}": float(value) for name, value in figures.items()}


def emit(figures: Mapping[str, float]) -> None:
    """Send every figure as a gauge; a collector that is down costs nothing but a log line."""
    try:
        with client().pipeline() as batch:
            for name, value in sorted(figures.items()):
                batch.gauge(name, value)
    except (OSError, ValueError) as exc:
        log.warning("statsd: could not send %d figures: %s", len(figures), exc)


def count(name: str, value: int = 1) -> bool:
    """Increment a counter (e.g. ``<dataset>.deadline_miss``); False when it could not be sent
    (no collector, or a port setting that is not a number)."""
    try:
        client().incr(name, value)
    except (OSError, ValueError) as exc:
        log.warning("statsd: could not count %s: %s", name, exc)
        return False
    return True
