"""Parsing: raw text -> binary constituency trees. parse.py: the parser (Stanza's official models, or the bundled one
called directly), the parse cache and bracket F1; chart.py: the bundled chart parser."""
