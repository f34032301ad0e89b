"""What a run directory's data becomes: statistics, quality scores, filtered copies, exports.

Row-level functions here are pure (rows in, rows or figures out) and named
after what they do (``compute_*``, ``filter_*``, ``extract_*``, ``validate_*``);
reading and writing run directories is kept in ``rundata``, ``filtered_run``
and ``writers``, and the CLI in ``graphs.commands``.
"""
