"""DiaSynth scenario expansion: topics -> subtopics -> personas -> persona pairs, plus the
dialogue characteristics (chain of thought), few-shot register examples and summaries.

Importing this package loads no model and reads no file; the embedding model
loads on the first deduplication.
"""

from .characteristics import TABLE_11, Characteristic
from .counts import Counts, expected_counts
from .dedup import DedupResult, Duplicate, Embedder, dedup, default_embedder
from .diasynth_config import DEFAULT_DEDUP_THRESHOLD, DiaSynthConfig
from .expansion_report import ExpansionReport, ListReport
from .fewshot import FewShotExample, FewShotPool, load_pool
from .personas import generate_personas
from .subtopics import generate_subtopics
from .summaries import summarization_rows, summarize

__all__ = [
    "DEFAULT_DEDUP_THRESHOLD", "TABLE_11", "Characteristic", "Counts", "DedupResult", "DiaSynthConfig", "Duplicate",
    "Embedder", "ExpansionReport", "FewShotExample", "FewShotPool", "ListReport", "dedup", "default_embedder",
    "expected_counts", "generate_personas", "generate_subtopics", "load_pool",
    "summarization_rows", "summarize",
]
