"""Evaluation: metrics.py (the paper's metrics), analysis.py (negation, contrast, difficulty per tree), evaluate.py
(a model on trees), render.py (drawing predictions), report.py (plots of run directories), results.py (the result
tables of a campaign)."""
