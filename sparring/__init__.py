"""sparring: multi-agent self-play for language-model data.

The project's folders install under this one namespace: ``sparring.agents``,
``sparring.graphs``, ``sparring.principles``, ``sparring.diasynth_agents`` and
``sparring.traces`` (see ``[tool.setuptools]`` in pyproject.toml).
"""

from __future__ import annotations
