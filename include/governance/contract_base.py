"""The base of every contract section: unknown keys are refused (a misspelt setting must not
be silently ignored) and a loaded contract cannot be changed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
