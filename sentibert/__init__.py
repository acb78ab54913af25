"""SentiBERT: compositional sentiment over binary constituency trees.

    from sentibert import load_model
    model = load_model("minilm")                 # a bundled model's name (minilm, mpnet) or a directory
    trees = model.predict(["Not bad at all."])   # per tree: labels, probs per phrase node; model.label_names
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    """`load_model` (sentibert.inference.predict) is imported when first used: `import sentibert` and the command
    line's start stay free of torch."""
    if name == "load_model":
        from sentibert.inference.predict import load_model

        return load_model
    raise AttributeError(f"module 'sentibert' has no attribute {name!r}")
