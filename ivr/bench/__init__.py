"""Benchmarks of the whole product under load (`ivr-bench`), see ivr/bench/load.py."""
