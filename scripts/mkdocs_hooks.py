"""MkDocs hooks (mkdocs.yml ``hooks:``): the generated configuration reference, the stale-reference check
and a place in the nav for pages added without one. The work is done in scripts/docs_reference.py."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for scripts.docs_reference

from scripts.docs_reference import MARKER, config_reference, place_new_pages, stale_references  # noqa: E402

log = logging.getLogger("mkdocs.hooks.sparring")  # a warning here fails `mkdocs build --strict`


def on_config(config: Any) -> Any:
    """Pages under docs/ that the nav does not list join the section of their prefix, or "More"."""
    docs = Path(config["docs_dir"])
    pages = [p.relative_to(docs).as_posix() for p in docs.rglob("*.md")]
    if config["nav"] is not None:
        config["nav"] = place_new_pages(config["nav"], pages)
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Write the configuration reference where a page asks for it; warn on every stale path or name."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, config_reference())
    for name in stale_references(markdown):
        log.warning("%s names `%s`, which does not exist in the repository (moved or removed?)",
                    page.file.src_uri, name)
    return markdown
