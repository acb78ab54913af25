"""Inference: predict.py (text -> parsed trees -> per-phrase predictions), app.py (the web page and JSON API)."""
