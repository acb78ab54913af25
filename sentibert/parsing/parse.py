"""Raw text -> binary constituency trees, offline, with Stanza.

    echo "Not bad at all." | sentibert parse          # one sentence per line in, one binary PTB tree per line out
    sentibert parser info | download

Models, first found wins:
  1. the official Stanza English models, if installed (`sentibert parser download` with a network):
     Stanza's own tokenizer, tagger and constituency parser;
  2. the bundled model (sentibert/resources/parser, recipe in experiments/parser): the chart parser of
     `sentibert.parsing.chart` (MiniLM + LoRA adapters, 2 MB), trained on SST train trees. Its input is tokenised
     PTB-style by nltk, as SST is, and it is called directly: its trees are binary already, and running it inside
     a Stanza pipeline (as a processor) cost 40% of the parse time in conversions, for nothing.
     `precision="bf16"` runs it under autocast (predict's default where the CPU has native bf16: the same dev
     bracket F1, experiments/bench/README.md); such parses are cached apart from float32 ones.

Parses are cached on disk ($SENTIBERT_CACHE or ~/.cache/sentibert, then parses/), keyed by model file
hash and text, so a sentence is parsed once per model. An entry holds its text's and its tree's SHA-256: one
that does not match (another sentence's tree, a damaged file) is parsed again, with a warning, and a cache
that cannot be read or written is a warning, never an error. The cache is bounded, so that a server parsing every
client's new text does not fill the disk: at most MAX_CACHE_ENTRIES parses per model, least recently used removed
first (a hit renews an entry's mtime; past the cap, the oldest go, down to 90% of it). Stanza's n-ary output is
binarised with `sentibert.data.tree.binarize`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from nltk import Tree
from tqdm import tqdm

from sentibert.data.tree import PTB_BRACKETS, BinaryTree, binarize
from sentibert.io import atomic_write_text, cache_root

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "resources" / "parser"
CHART_FILES = ("config.json", "model.safetensors")  # the bundled chart parser (parsing.chart.ChartParser.save)
PARSE_BATCH_SIZE = 256  # sentences per pipeline call (the cache is written after each)
# Parses kept per model: 3 x the texts of GLUE SST-2 (68k, the largest dataset parsed here). An entry is about
# 0.4 KB, one 4 KB block on most disks: under 1 GB in all.
MAX_CACHE_ENTRIES = 200_000


class ParserError(RuntimeError):
    """A parser that cannot run (missing model) or input it cannot parse; the message says what to do."""


# ---- models ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParserModel:
    name: str
    path: Path  # official: the constituency model file; bundled: the chart parser's directory
    resources_dir: Path | None = None  # set for the official models, whose tokenizer and tagger we use

    @property
    def official(self) -> bool:
        return self.resources_dir is not None

    @property
    def files(self) -> list[Path]:
        return [self.path] if self.official else [self.path / name for name in CHART_FILES]

    @cached_property
    def key(self) -> str:
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.read_bytes())
        digest.update(b"stanza-tokenizer" if self.official else b"nltk-treebank-tokenizer")
        return digest.hexdigest()[:16]


def stanza_resources_dir() -> Path:
    from stanza.resources.common import DEFAULT_MODEL_DIR  # honours $STANZA_RESOURCES_DIR

    return Path(DEFAULT_MODEL_DIR)


def official_model(resources_dir: Path | None = None) -> ParserModel | None:
    """The official English constituency model, if `stanza.download('en', ...)` installed it."""
    resources_dir = resources_dir or stanza_resources_dir()
    try:
        resources = json.loads((resources_dir / "resources.json").read_text(encoding="utf-8"))
        package = resources["en"]["packages"]["default"]["constituency"]
    except (OSError, ValueError, KeyError):
        return None
    path = resources_dir / "en" / "constituency" / f"{package}.pt"
    return ParserModel(f"stanza-en-{package}", path, resources_dir=resources_dir) if path.exists() else None


def bundled_model(directory: Path = BUNDLED_DIR) -> ParserModel:
    for name in CHART_FILES:
        if not (directory / name).exists():
            raise ParserError(
                f"parser model file {directory / name} is missing. Reinstall sentibert (`pip install -e .` from a full "
                "checkout) to restore the bundled parser, or install the official Stanza English models with "
                "`sentibert parser download` (needs a network)."
            )
    return ParserModel("bundled-sst-chart", directory)


def find_model(name: str = "auto") -> ParserModel:
    """'auto': the official Stanza models if installed, else the bundled one; or 'stanza' / 'bundled'."""
    if name in ("auto", "stanza"):
        model = official_model()
        if model is not None:
            return model
        if name == "stanza":
            raise ParserError(
                f"the official Stanza English models are not installed in {stanza_resources_dir()}. "
                "Run `sentibert parser download` (needs a network), or use the bundled parser (--model bundled)."
            )
    if name in ("auto", "bundled"):
        return bundled_model()
    raise ParserError(f"unknown parser model {name!r}: expected auto, stanza or bundled")


# ---- Stanza pipeline (official models) -----------------------------------------------------------------
def build_pipeline(model: ParserModel):
    import stanza

    return stanza.Pipeline(dir=str(model.resources_dir), processors="tokenize,pos,constituency", lang="en",
                           tokenize_no_ssplit=True, constituency_model_path=str(model.path),
                           constituency_batch_size=PARSE_BATCH_SIZE, download_method=None, logging_level="ERROR",
                           use_gpu=False)


def stanza_tree_to_nltk(tree) -> Tree | str:
    """A Stanza constituency tree -> nltk.Tree, node by node (no string round trip)."""
    if tree.is_leaf():
        return PTB_BRACKETS.get(tree.label, tree.label)
    return Tree(tree.label, [stanza_tree_to_nltk(kid) for kid in tree.children])


def ptb_tokenize(text: str) -> list[str]:
    """PTB tokens as in SST: `` '' quotes, n't split off, brackets as -LRB-/-RRB- (nltk, no download needed)."""
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer().tokenize(text, convert_parentheses=True)


# ---- the parser -----------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    return cache_root() / "parses"


class Parser:
    """`parse(texts)` -> one BinaryTree per text; batched, cached, and the pipeline loads on first need."""

    def __init__(self, model: ParserModel, cache_dir: Path | None = None, use_cache: bool = True,
                 precision: str = "32", max_cache_entries: int = MAX_CACHE_ENTRIES):
        self.model = model
        self.max_cache_entries = max_cache_entries
        self._cache_entries: int | None = None  # counted on the first write
        self.precision = "32" if model.official else precision  # Stanza's models run as Stanza runs them
        suffix = "" if self.precision == "32" else f"-{self.precision}"  # bf16 parses may differ: cached apart
        self.cache_dir = (cache_dir or default_cache_dir()) / f"{model.key}{suffix}" if use_cache else None

    @cached_property
    def pipeline(self):
        """The model, loaded on first need: a Stanza pipeline (official) or the chart parser itself (bundled)."""
        from sentibert.models.encoder import EncoderNotFound  # imports transformers: not needed for cached parses
        from sentibert.parsing.chart import ChartParser

        try:
            return build_pipeline(self.model) if self.model.official else ChartParser.load(self.model.path)
        except (FileNotFoundError, EncoderNotFound) as err:
            raise ParserError(f"cannot load parser model {self.model.name}: {err}. Reinstall with "
                              "`sentibert parser download` (official) or reinstall sentibert (bundled).") from err

    def parse(self, texts: Sequence[str], source: str = "input") -> list[BinaryTree]:
        """One tree per text; `source` names the input in error messages (source:line)."""
        texts = [text.strip() for text in texts]
        for n, text in enumerate(texts, start=1):
            if not text:
                raise ParserError(f"{source}:{n}: empty line; give one sentence per line")
        trees: dict[str, BinaryTree | None] = {text: self._cached(text) for text in dict.fromkeys(texts)}
        todo = [text for text, tree in trees.items() if tree is None]
        batches = range(0, len(todo), PARSE_BATCH_SIZE)
        for start in tqdm(batches, desc="parsing", unit="batch", disable=None):  # a bar on a tty only
            batch = todo[start:start + PARSE_BATCH_SIZE]
            for text, tree in zip(batch, self._parse_uncached(batch, texts, source)):
                trees[text] = tree
                self._store(text, tree)
        return [trees[text] for text in texts]

    def _parse_uncached(self, batch: list[str], texts: list[str], source: str) -> list[BinaryTree]:
        import torch

        from sentibert.parsing.chart import SentenceError
        from sentibert.precision import autocast

        def where(text: str) -> str:
            return f"{source}:{texts.index(text) + 1}"

        if self.model.official:
            return self._parse_with_stanza(batch, where)
        words = [ptb_tokenize(text) for text in batch]
        for text, tokens in zip(batch, words):
            if not tokens:
                raise ParserError(f"{where(text)}: no words in {text!r}")
        try:
            with autocast(self.precision, torch.device("cpu")):
                return self.pipeline.parse(words)
        except SentenceError as err:  # the bundled parser refuses one sentence (too long): name its line
            raise ParserError(f"{where(batch[err.index])}: {str(err).split(': ', 1)[1]}") from None

    def _parse_with_stanza(self, batch: list[str], where) -> list[BinaryTree]:
        from stanza import Document

        docs = self.pipeline([Document([], text=text) for text in batch])  # one bulk call for the batch
        trees = []
        for text, doc in zip(batch, docs):
            if len(doc.sentences) != 1:
                raise ParserError(f"{where(text)}: the tokenizer found {len(doc.sentences)} sentences in {text!r}, "
                                  "not one")
            trees.append(binarize(stanza_tree_to_nltk(doc.sentences[0].constituency)))
        return trees

    def _cache_path(self, text: str) -> Path:
        return self.cache_dir / f"{_sha256(text)}.json"

    def _cached(self, text: str) -> BinaryTree | None:
        """The cached tree of `text`, or None. The file name alone is not trusted: the entry must carry the
        checksums of this text and of its tree, or a copied or damaged file would give a wrong tree silently."""
        if self.cache_dir is None:
            return None
        path = self._cache_path(text)
        try:
            entry = json.loads(path.read_bytes())
            if entry["text_sha256"] != _sha256(text):
                raise ValueError("it holds another sentence's tree")
            if entry["tree_sha256"] != _sha256(entry["tree"]):
                raise ValueError("its tree does not match its checksum")
            tree = BinaryTree.from_ptb(entry["tree"], str(path))
        except FileNotFoundError:
            return None
        except OSError as err:  # unreadable: say so once, then parse without the cache
            self._give_up_cache(f"cannot read the parse cache {self.cache_dir} ({err.strerror or err})")
        except (ValueError, KeyError, TypeError) as err:  # bad JSON, missing keys, a bad tree
            log.warning("parse cache entry %s is unusable (%s); parsing it again", path, err)
        else:
            try:
                os.utime(path)  # recently used: the last to be evicted
            except OSError:  # a read-only cache still serves its entries
                pass
            return tree
        return None

    def _store(self, text: str, tree: BinaryTree) -> None:
        if self.cache_dir is None:
            return
        ptb = tree.to_ptb()
        entry = {"text_sha256": _sha256(text), "tree": ptb, "tree_sha256": _sha256(ptb)}
        path = self._cache_path(text)
        new = not path.exists()
        try:
            atomic_write_text(path, json.dumps(entry) + "\n")
            if new:
                self._count_new_entry()
        except OSError as err:  # read-only or full disk: the parse itself is still good
            self._give_up_cache(f"cannot write the parse cache {self.cache_dir} ({err.strerror or err})")

    def _count_new_entry(self) -> None:
        """Past max_cache_entries, remove the least recently used entries down to 90% of it: the directory is
        scanned once per tenth of the cap, not once per write. Other processes' entries count from the next scan."""
        if self._cache_entries is None:
            self._cache_entries = sum(1 for name in os.listdir(self.cache_dir) if name.endswith(".json"))
        else:
            self._cache_entries += 1
        if self._cache_entries <= self.max_cache_entries:
            return
        entries = []
        for entry in os.scandir(self.cache_dir):
            if entry.name.endswith(".json"):
                try:
                    entries.append((entry.stat().st_mtime_ns, entry.path))
                except FileNotFoundError:  # another process evicted it
                    pass
        keep = int(0.9 * self.max_cache_entries)
        for _, path in sorted(entries)[:max(len(entries) - keep, 0)]:
            Path(path).unlink(missing_ok=True)
        self._cache_entries = min(keep, len(entries))

    def _give_up_cache(self, message: str) -> None:
        log.warning("%s; parsing without it", message)
        self.cache_dir = None  # one warning, not one per sentence


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_parser(model: str = "auto", cache_dir: Path | None = None, use_cache: bool = True,
                precision: str = "32") -> Parser:
    """precision (the bundled parser's): 32, bf16, or auto (bf16 where this CPU runs it natively)."""
    import torch  # not at the top: cached parses need no torch

    from sentibert.precision import resolve

    return Parser(find_model(model), cache_dir, use_cache, resolve(precision, torch.device("cpu")))


# ---- scoring -------------------------------------------------------------------------------------------
def bracket_spans(tree: BinaryTree) -> set[tuple[int, int]]:
    """The brackets we score: spans of internal nodes, minus the root (it always covers the sentence).
    Single words are never nodes of a BinaryTree, so they are not counted either."""
    return set(tree.spans[1:])


def bracket_counts(gold: BinaryTree, predicted: BinaryTree) -> tuple[int, int, int]:
    """(matched, gold, predicted) brackets of one sentence, compared by token positions: the trees need
    the same number of leaves, though a tokenizer may spell one differently (a closing quote as ``)."""
    if len(gold.tokens) != len(predicted.tokens):
        raise ValueError(f"{len(gold.tokens)} gold leaves but {len(predicted.tokens)} predicted: "
                         f"{gold.text!r} vs {predicted.text!r}")
    g, p = bracket_spans(gold), bracket_spans(predicted)
    return len(g & p), len(g), len(p)


def f1_score(matched: int, n_gold: int, n_predicted: int) -> float:
    return 2 * matched / (n_gold + n_predicted) if n_gold + n_predicted else 1.0


def bracket_f1(gold: Sequence[BinaryTree], predicted: Sequence[BinaryTree]) -> float:
    """Unlabeled bracket F1 (0-1), micro-averaged over the corpus: 2 * matched / (gold + predicted)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold trees but {len(predicted)} predicted")
    counts = [bracket_counts(g, p) for g, p in zip(gold, predicted)]
    return f1_score(*(sum(column) for column in zip(*counts))) if counts else 1.0
