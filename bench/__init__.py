"""Benchmarks that print numbers; never part of the pass/fail suite."""
