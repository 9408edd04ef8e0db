"""`dreamlab compare`: runs (dreamlab, TensorBoard, MLflow) -> statistics, verdicts, tables, plots.

runs.py reads sources into `Run` records; stats.py holds pure statistics of one curve;
summarize.py turns runs into per-run and per-group rows; verdict.py judges a hypothesis;
report.py renders rows; plot.py draws learning curves.
"""
