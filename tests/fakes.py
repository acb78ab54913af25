"""Stand-ins the tests share (`from fakes import ...`; conftest's fake_parser fixture puts the parser in place)."""
from sentibert.data.tree import BinaryTree

# Every place that loads the parser by name: fake_parser replaces each of them.
LOAD_PARSER = ("sentibert.parsing.parse", "sentibert.inference.predict", "sentibert.commands.predict",
               "sentibert.commands.parse", "sentibert.commands.compare")


def right_branching(text: str) -> BinaryTree:
    """(w1 (w2 (... wn))) over the text's whitespace tokens."""
    def ptb(words):
        return f"(X {words[0]})" if len(words) == 1 else f"(X (X {words[0]}) {ptb(words[1:])})"

    return BinaryTree.from_ptb(ptb(text.split()))


class RightBranchingParser:
    """Stands in for the project's parser (tested in test_parse and test_stanza): right-branching trees over
    whitespace tokens. It records each parse call's texts (`calls`) and how it was loaded (`use_cache`)."""

    def __init__(self):
        self.calls, self.use_cache = [], None

    def load(self, model="auto", cache_dir=None, use_cache=True, precision="32"):
        """Stands in for sentibert.parsing.parse.load_parser."""
        self.use_cache = use_cache
        return self

    def parse(self, texts, source="input"):
        self.calls.append(list(texts))
        return [right_branching(text) for text in texts]
