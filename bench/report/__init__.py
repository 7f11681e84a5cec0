"""Reporting: from results folders to tables, figures and a regression verdict. One module per job:

- ``load``: the only reader of results (folders, runs.csv, epochs.csv, artifacts);
- ``aggregate``: pure DataFrames in and out: group keys, per-seed values, summaries over seeds, ratios, curves;
- ``labels``: what tells the settings of a dataset apart, for legends and ticks;
- ``paper``: the paper's published numbers;
- ``tables``: terminal tables, summary.md and summary.csv, and the compare tables (one markdown helper);
- ``figures``: the figures;
- ``compare``: the CI gate's thresholds and verdicts, on the same aggregation as the report.
"""
