"""``python -m bench.results``: print the README's results-column tables, generated from the schema."""

import sys

from bench.results.schema import readme_section

sys.stdout.write(readme_section())
