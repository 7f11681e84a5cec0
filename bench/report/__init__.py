"""Reporting: from results folders to tables, figures and a regression verdict. One module per job:

- ``load``: the only reader of results (folders, runs.csv, epochs.csv, artifacts) and of config_json; fills each
  run's ``baseline``;
- ``aggregate``: pure DataFrames in and out: group keys, per-seed values, the summary over seeds;
- ``baselines``: what each method is measured against: the ratios to its baseline, and the method order;
- ``labels``: what tells the settings of a dataset apart, and a group's name, for legends, ticks and warnings;
- ``paper``: the paper's published numbers;
- ``uncertainty``: t intervals over seeds, a difference paired by seed, within noise or not, and the seeds a paired
  t test would need to resolve it (the report's ``intervals`` view and ``compare`` both use it);
- ``build``: the whole report: ``aggregate``, then each view's data;
- ``views``: one module per thing the report shows (its data, tables, CSVs and figures), and ``VIEWS``, the one
  list the builder, the terminal tables, summary.md and the figures iterate;
- ``artifact_groups``: which runs' artifacts the per-method figures draw, and their file names;
- ``cells``: how the summary reads as text (shared cells, one rich table look, one markdown helper);
- ``plot``: the one figure style and the panel layout every figure is drawn with;
- ``tables``: writes the terminal tables, summary.md and the CSVs;
- ``figures``: writes the figures;
- ``compare``: the CI gate's thresholds and verdicts, on the same aggregation as the report;
- ``compare_tables``: the gate's tables, markdown and verdict lines.
"""
