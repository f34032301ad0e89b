"""The ``principles:`` block of a run config: which constitution a run judges against."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .loader import ALL_SETS, resolve_principles
from .model import Constitution
from .yamlfile import LineMap, Path_


class PrincipleSelection(BaseModel):
    """Principle sets to combine, and optionally which of their principles to keep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sets: list[str] = Field(default_factory=lambda: [ALL_SETS])
    """Built-in set ids (``privacy``, ``quickstart``, ``all`` for every built-in set) and/or
    paths to your own YAML files (ending in ``.yaml``/``.yml``; relative to the config file's
    folder). Combined in this order, each principle once."""
    ids: list[str] | None = None
    """Keep only these principle ids, in this order; ``*`` patterns allowed (``privacy.*``).
    Leave out to keep every principle of the selected sets."""

    @field_validator("sets", "ids")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        # An empty list selects nothing, which is never what was meant; say what to write instead.
        if value is not None and not value:
            raise PydanticCustomError(
                "empty_selection", "an empty list selects nothing; leave the key out to use the default")
        return value

    def resolve(self, base_dir: str | Path | None = None, *, source: str | None = None,
                lines: LineMap | None = None, prefix: Path_ = ("principles",)) -> Constitution:
        """Load and combine the selection; every problem is an InputError, raised before any model call.

        ``base_dir`` is the config file's folder (relative paths are read from it);
        ``source`` and ``lines`` are the config file's name and line map, and
        ``prefix`` the key path of this block in it, so that an error about an
        entry points at the line that wrote it.
        """
        return resolve_principles(self.sets, self.ids, base_dir=base_dir, source=source,
                                  lines=lines, prefix=prefix)
