"""Campaign: many training runs and their result tables, above training and evaluation (nothing below imports it).
spec.py (the campaign file, its runs' names, what a results folder says of them), runner.py (running the runs,
resumably, and collecting their results), results.py (the results folder read into rows and paired comparisons),
tables.py (RESULTS.md, summary.csv and the plots)."""
