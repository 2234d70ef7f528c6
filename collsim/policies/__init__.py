"""Policies: baselines, the champion strategy tree, allocation, learned policies."""
