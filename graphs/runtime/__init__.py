"""The run machinery: one run from request to report (pipeline, runner, worker processes), the run
directory and its state (store, checkpoints, lock, manifest, totals), plans and shards (plan_files,
plan_expansion, shard_merge), and what a run needs around it (role backends, progress, engine log,
tracing, report, replay). The graphs themselves and their state live in ``sparring.graphs``."""
