"""One module per ``sparring`` subcommand. Each imports only click at module level."""
