"""The run log: every run stored in SQLite, for history, replay, totals and verdicts."""
