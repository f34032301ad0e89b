"""One module per ``sparring`` subcommand, each importing only click at module level; beside them the
steps only these commands run that call a model (``judge_run``, ``critic_calibration``, ``diagnosis``)."""
