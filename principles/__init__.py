"""Constitutions: principles as YAML data, their models and their loader.

- ``model``: ``Principle``, ``PrincipleSet`` (one file) and ``Constitution``
  (the combined, de-duplicated selection a run judges against).
- ``loader``: reading files, built-in set discovery, resolving a selection.
- ``config``: the ``principles:`` block of a run config.
- ``yamlfile``: YAML with line numbers, and ``InputError``.

The built-in sets live in ``sets/``, one file per category (``honesty.yaml``,
``privacy.yaml``, ...), plus ``quickstart.yaml``, which defines nothing and
``include``s a few of their ids. One file per category keeps each file short
enough to review as a whole, makes a category a natural unit to select, and
gives every principle a namespace: a built-in id starts with the id of the set
that defines it (``privacy.no-doxxing``), so ids stay unique as sets grow.
The name ``all`` selects every built-in set. ``sets/`` has no ``__init__.py``:
it is data, found with ``importlib.resources`` and shipped as package data.
Nothing here reads a file at import time.
"""
