"""``python -m dsrflow.cli``: ``dsr`` without the console script (the benchmarks start it so)."""

from dsrflow.cli import main

main()
