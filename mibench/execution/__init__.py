"""Executors: how a plan's jobs are run (one after another here; worker pools and clusters later)."""
