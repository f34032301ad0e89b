"""The tactics library: one named multi-turn attack tactic per file (agents/tactics.py reads them)."""
