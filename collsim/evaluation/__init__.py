"""Evaluation: running policies on scenarios, statistics and reports."""
