"""Evaluation: metrics.py (the paper's metrics), analysis.py (negation, contrast, difficulty per tree), evaluate.py
(a model on trees), render.py (drawing predictions), report.py (plots of run directories), significance.py (paired
bootstrap), probe.py (the behaviour suite), compare.py (two models side by side)."""
