"""SentiBERT: compositional sentiment over binary constituency trees."""
__version__ = "0.1.0"
