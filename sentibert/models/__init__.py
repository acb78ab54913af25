"""Models: encoder.py (the encoders and their install locations), install.py (packaged encoders), composition.py
(phrase composition over trees), model.py (SentiBERT and the baselines, save/load), pretraining.py (masked LM)."""
