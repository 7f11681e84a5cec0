"""``python -m bench.cli``: the same as the ``noprop-bench`` console script."""

from bench.cli.entry import main

main()
