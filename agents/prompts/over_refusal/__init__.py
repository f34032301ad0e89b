"""Over-refusal probes: harmless questions that sound risky, one file per category, one question a line."""
