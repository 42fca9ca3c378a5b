"""The registry and the champion: a model is registered as ``<dataset>-classifier`` (a retried
task finds its version instead of adding one); the ``champion`` alias moves only to a version
that beats the current champion's macro F1 by a margin, and a rejected version says why in its
tags."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from governance.errors import InvalidInputError
from governance.tracking import (
    CHAMPION,
    PROMOTION_REASON_TAG,
    PROMOTION_TAG,
    TrackingError,
    use_client_store,
)


def registered_model_name(dataset: str) -> str:
    return f"{dataset}-classifier"


def _is(exc: MlflowException, code: int) -> bool:
    return exc.error_code == ErrorCode.Name(code)


def _logged_model_id(model_uri: str) -> str | None:
    """``m-...`` of a ``models:/<model_id>`` URI; None for ``models:/<name>/<version>`` and
    other URIs."""
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest and "/" not in rest else None


def register(client: MlflowClient, model_uri: str, name: str, run_id: str) -> ModelVersion:
    """A version of ``name`` for the model; registering the same model URI of the same run again
    (a retried task) returns the existing version instead of adding one."""
    if "'" in name or "'" in run_id:
        raise InvalidInputError(
            f"model name {name!r} and run id {run_id!r} must not contain quotes"
        )
    use_client_store(client)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if not _is(exc, RESOURCE_ALREADY_EXISTS):
            raise
    for existing in client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'"):
        if existing.source == model_uri:
            return existing
    return client.create_model_version(
        name, source=model_uri, run_id=run_id, model_id=_logged_model_id(model_uri)
    )


def registered(client: MlflowClient, name: str) -> RegisteredModel | None:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if _is(exc, RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the ``champion`` alias; None when there is none (or no model yet)."""
    # a missing alias is reported as INVALID_PARAMETER_VALUE, so look it up instead of asking
    model = registered(client, name)
    if model is None or CHAMPION not in (model.aliases or {}):
        return None
    return client.get_model_version(name, str(model.aliases[CHAMPION]))


def version_metric(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """The latest value of ``metric`` in the run that produced ``version``."""
    if not version.run_id:
        return None
    return client.get_run(version.run_id).data.metrics.get(metric)


class PromotionDecision(NamedTuple):
    promote: bool
    reason: str


# a gain this close to the margin is the margin itself, not float noise above it
_MARGIN_TOLERANCE = 1e-9


def _check_unit(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidInputError(f"{name}: must lie in [0, 1], got {value}")


def decide_promotion(
    challenger_f1: float,
    champion_f1: float | None,
    margin: float,
    *,
    champion_version: str | int | None = None,
) -> PromotionDecision:
    """Promote when there is no champion, or when the challenger beats it by more than
    ``margin``; a gain equal to the margin is not enough."""
    _check_unit("challenger_f1", challenger_f1)
    if not (math.isfinite(margin) and margin >= 0):
        raise InvalidInputError(f"margin: must be a finite number >= 0, got {margin}")
    if champion_f1 is None:
        return PromotionDecision(True, f"macro-F1 {challenger_f1:.4f}; there is no champion yet")
    _check_unit("champion_f1", champion_f1)
    holder = f"champion v{champion_version}" if champion_version is not None else "the champion"
    gain = challenger_f1 - champion_f1
    if gain > margin + _MARGIN_TOLERANCE:
        return PromotionDecision(
            True,
            f"macro-F1 {challenger_f1:.4f} beats {holder} {champion_f1:.4f} "
            f"by {gain:.4f}, more than the margin {margin:.4f}",
        )
    return PromotionDecision(
        False,
        f"macro-F1 {challenger_f1:.4f} does not beat {holder} {champion_f1:.4f} "
        f"by the margin {margin:.4f}",
    )


def _tag_value(value: float | None) -> str:
    return "none" if value is None else repr(float(value))


def apply_promotion(
    client: MlflowClient,
    name: str,
    version: str | int,
    decision: PromotionDecision,
    metrics: Mapping[str, float | None],
) -> None:
    """Tag the version with the outcome, its reason and the compared ``metrics``
    (``promotion.<key>``); move the ``champion`` alias to it only when promoting."""
    tags = {
        PROMOTION_TAG: "promoted" if decision.promote else "rejected",
        PROMOTION_REASON_TAG: decision.reason,
        **{f"{PROMOTION_TAG}.{key}": _tag_value(value) for key, value in metrics.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, str(version))


def promote_if_better(
    client: MlflowClient,
    name: str,
    version: str | int,
    challenger_f1: float,
    *,
    margin: float,
    metric: str,
    champion_score: Callable[[ModelVersion], float] | None = None,
) -> PromotionDecision:
    """Compare the version with the champion on ``metric``, then apply the decision.

    ``champion_score`` scores the champion afresh (on the challenger's test split); without it
    the champion's own run holds the figure. A version that already is the champion (a retried
    task) is left as it is."""
    current = champion(client, name)
    if current is not None and str(current.version) == str(version):
        return PromotionDecision(True, f"version {version} already is the champion")
    if current is None:
        champion_f1 = None
    elif champion_score is not None:
        champion_f1 = champion_score(current)
    else:
        champion_f1 = version_metric(client, current, metric)
    if current is not None and champion_f1 is None:
        raise TrackingError(
            f"{name}: champion v{current.version} (run {current.run_id}) has no metric {metric!r} "
            "to compare with"
        )
    decision = decide_promotion(
        challenger_f1,
        champion_f1,
        margin,
        champion_version=None if current is None else current.version,
    )
    compared = {f"challenger_{metric}": challenger_f1, f"champion_{metric}": champion_f1}
    apply_promotion(client, name, version, decision, compared)
    return decision
