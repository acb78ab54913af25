"""Parsing: raw text -> binary constituency trees. parse.py: the Stanza pipeline, the parse cache and bracket F1;
chart.py: the bundled chart parser (a Stanza processor)."""
