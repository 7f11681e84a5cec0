"""Executors: how the runs of a sweep are dispatched (local child processes, the default; or Ray tasks)."""
