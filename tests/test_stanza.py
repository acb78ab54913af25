"""The Stanza path on a real `stanza.Pipeline`, offline: tiny English models built here with Stanza's own training
code and saved as Stanza saves them (a word-vector pretrain, a neural tokenizer, a POS tagger, a constituency parser),
listed in a resources.json as `stanza.download` writes it. `sentibert parse --model stanza`, `parser info` and
`predict --parser stanza` then run unchanged: `build_pipeline`, `_parse_with_stanza`, `stanza_tree_to_nltk`,
binarisation and the cache.

The weights are tiny and nearly untrained: the tokenizer is trained (200 steps, a few seconds) until it splits these
sentences as SST does, so that the tokens can be asserted; the tagger takes 2 steps and the parser none, so the trees
are arbitrary (deep unary chains, wrong labels). What is tested is what sentibert does with whatever tree Stanza
returns: every constituent Stanza found is a phrase of the binary tree, with the same leaves.
"""
import json
import logging
import random

import numpy
import pytest
import torch

from sentibert import cli
from sentibert.data.tree import BinaryTree, binarize
from sentibert.parsing import parse

# the nearly untrained tokenizer's close calls (does "all." split?) flip with torch's thread count: one thread, as
# the models were built
pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCES = [["Not", "bad", "at", "all", "."], ["The", "film", "is", "n't", "great", ",", "but", "it", "works", "."],
             ["A", "gentle", ",", "funny", "movie", "."], ["It", "is", "not", "at", "all", "bad", "."]]
TEXTS = ["Not bad at all.", "The film isn't great, but it works.", "A gentle, funny movie.", "It is not at all bad."]
GLUED = {".", ",", "n't"}  # written without a space before them
TAGS = {"Not": "RB", "not": "RB", "bad": "JJ", "at": "IN", "all": "DT", ".": ".", "The": "DT", "film": "NN",
        "is": "VBZ", "n't": "RB", "great": "JJ", ",": ",", "but": "CC", "it": "PRP", "It": "PRP", "works": "VBZ",
        "A": "DT", "gentle": "JJ", "funny": "JJ", "movie": "NN"}
TREEBANK = """(ROOT (S (ADVP (RB Not) (JJ bad)) (PP (IN at) (DT all)) (. .)))
(ROOT (S (NP (DT A) (JJ gentle) (, ,) (JJ funny) (NN movie)) (. .)))"""
PACKAGE = "tiny"
PROCESSORS = ("tokenize", "pos", "constituency")


def detokenize(words: list[str]) -> tuple[str, str]:
    """A sentence's text and Stanza's per-character tokenizer labels (1: a token ends, 2: the sentence ends)."""
    text = labels = ""
    for n, word in enumerate(words):
        if n and word not in GLUED:
            text, labels = text + " ", labels + "0"
        text += word
        labels += "0" * (len(word) - 1) + ("2" if n == len(words) - 1 else "1")
    return text, labels


def build_models(resources, work) -> None:
    """Stanza's own trainers, tiny sizes, on CPU; each model saved where `stanza.download` puts it."""
    from stanza.models import constituency_parser, tagger, tokenizer
    from stanza.models.common.foundation_cache import FoundationCache
    from stanza.models.common.pretrain import Pretrain
    from stanza.models.common.utils import set_random_seed
    from stanza.models.constituency import parser_training, tree_reader

    models = {name: resources / "en" / name for name in ("pretrain", *PROCESSORS)}
    for folder in models.values():
        folder.mkdir(parents=True)
    vectors = torch.randn(len(TAGS), 4, generator=torch.Generator().manual_seed(0))
    work.joinpath("vectors.txt").write_text(f"{len(TAGS)} 4\n" + "".join(
        f"{word} {' '.join(f'{x:.4f}' for x in row.tolist())}\n" for word, row in zip(TAGS, vectors)))
    pretrain = models["pretrain"] / f"{PACKAGE}.pt"
    Pretrain(str(pretrain), str(work / "vectors.txt")).load()  # converts the text vectors and saves them

    draw = random.Random(0)
    paragraphs = [[detokenize(draw.choice(SENTENCES)) for _ in range(3)] for _ in range(60)]
    work.joinpath("tok.txt").write_text("\n\n".join(" ".join(t for t, _ in p) for p in paragraphs) + "\n")
    work.joinpath("tok.lab").write_text("\n\n".join("0".join(lab for _, lab in p) for p in paragraphs) + "\n")
    work.joinpath("mwt.json").write_text("[]")
    data = ["--txt_file", "tok.txt", "--label_file", "tok.lab", "--dev_txt_file", "tok.txt", "--dev_label_file",
            "tok.lab", "--mwt_json_file", "mwt.json"]
    tokenizer.main([*(str(work / a) if a.endswith((".txt", ".lab", ".json")) else a for a in data),
                    "--lang", "en", "--shorthand", "en_tiny", "--emb_dim", "8", "--hidden_dim", "16", "--steps", "200",
                    "--eval_steps", "1000", "--no_use_mwt", "--dropout", "0", "--unit_dropout", "0", "--cpu",
                    "--seed", "1", "--save_dir", str(models["tokenize"]), "--save_name", f"{PACKAGE}.pt"])

    conllu = "".join("".join(f"{n}\t{w}\t{w}\t_\t{TAGS[w]}\t_\t{n - 1}\t{'dep' if n > 1 else 'root'}\t_\t_\n"
                             for n, w in enumerate(words, 1)) + "\n" for words in SENTENCES)
    work.joinpath("pos.conllu").write_text(conllu)
    tagger.main(["--wordvec_pretrain_file", str(pretrain), "--train_file", str(work / "pos.conllu"),
                 "--eval_file", str(work / "pos.conllu"), "--output_file", str(work / "pred.conllu"),
                 "--max_steps", "2", "--eval_interval", "1", "--batch_size", "10", "--hidden_dim", "8",
                 "--char_hidden_dim", "8", "--deep_biaff_hidden_dim", "8", "--composite_deep_biaff_hidden_dim", "4",
                 "--word_emb_dim", "4", "--char_emb_dim", "4", "--tag_emb_dim", "4", "--transformed_dim", "4",
                 "--num_layers", "1", "--shorthand", "en_tiny", "--cpu", "--seed", "1",
                 "--save_dir", str(models["pos"]), "--save_name", f"{PACKAGE}.pt"])

    set_random_seed(1)
    trees = tree_reader.read_trees(TREEBANK)
    args = constituency_parser.parse_args(["--wordvec_pretrain_file", str(pretrain), "--pattn_num_layers", "0",
                                           "--lattn_d_proj", "0", "--hidden_size", "8", "--delta_embedding_dim", "4",
                                           "--tag_embedding_dim", "4", "--transition_embedding_dim", "4",
                                           "--transition_hidden_size", "4", "--seed", "1", "--cpu"])
    trainer, *_ = parser_training.build_trainer(args, trees, trees, [], FoundationCache(), None)
    trainer.save(str(models["constituency"] / f"{PACKAGE}.pt"), save_optimizer=False)

    needs_pretrain = {"dependencies": [{"model": "pretrain", "package": PACKAGE}]}
    resources.joinpath("resources.json").write_text(json.dumps({"en": {
        "lang_name": "English", "pretrain": {PACKAGE: {}}, "tokenize": {PACKAGE: {}},
        "pos": {PACKAGE: needs_pretrain}, "constituency": {PACKAGE: needs_pretrain},
        "default_processors": {name: PACKAGE for name in PROCESSORS},
        "packages": {"default": {name: PACKAGE for name in PROCESSORS}}}}))


@pytest.fixture(scope="session")
def stanza_resources(tmp_path_factory):
    logging.getLogger("stanza").setLevel(logging.ERROR)
    resources = tmp_path_factory.mktemp("stanza_resources")
    states = random.getstate(), numpy.random.get_state()  # Stanza's trainers seed every generator
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests run (one_thread): the tokenizer's weights and its decisions repeat
    with torch.random.fork_rng():
        build_models(resources, tmp_path_factory.mktemp("stanza_training"))
    torch.set_num_threads(threads)
    random.setstate(states[0])
    numpy.random.set_state(states[1])
    return resources


@pytest.fixture
def stanza_installed(stanza_resources, monkeypatch):
    """The tiny models as the installed official ones (what `sentibert parser download` leaves)."""
    monkeypatch.setattr(parse, "stanza_resources_dir", lambda: stanza_resources)
    return stanza_resources


def spans_of(stanza_tree) -> set[tuple[int, int]]:
    """The word spans of a Stanza tree's constituents over two words or more, read from the Stanza tree itself."""
    spans = set()

    def walk(node, start: int) -> int:
        if node.is_leaf():
            return start + 1
        end = start
        for child in node.children:
            end = walk(child, end)
        if end - start > 1:
            spans.add((start, end))
        return end

    walk(stanza_tree, 0)
    return spans


def test_stanza_parses_through_a_real_pipeline_binarised_and_cached(stanza_installed, tmp_path, monkeypatch):
    import stanza

    parser = parse.load_parser("stanza", cache_dir=tmp_path / "cache")
    assert parser.model.official and parser.model.name == f"stanza-en-{PACKAGE}"
    trees = parser.parse(TEXTS)
    assert isinstance(parser.pipeline, stanza.Pipeline)
    assert [list(tree.tokens) for tree in trees] == SENTENCES  # Stanza's tokenizer: "isn't" -> is n't
    for text, tree in zip(TEXTS, trees):
        raw = parser.pipeline(text).sentences[0].constituency
        assert raw.label == "ROOT" and raw.leaf_labels() == list(tree.tokens)
        assert len(tree) == len(tree.tokens) - 1  # binary: n - 1 phrases, every unary chain collapsed
        assert tree.spans[0] == (0, len(tree.tokens))
        assert spans_of(raw) <= set(tree.spans)  # every constituent Stanza found is a phrase
        assert BinaryTree.from_ptb(tree.to_ptb()) == tree

    cached = len(list(parser.cache_dir.glob("*.json")))
    assert cached == len(TEXTS) and parser.cache_dir.name == parser.model.key
    again = parse.load_parser("stanza", cache_dir=tmp_path / "cache")
    monkeypatch.setattr(parse.Parser, "pipeline", property(lambda self: pytest.fail("Stanza ran on a cached text")))
    assert again.parse(TEXTS) == trees


def test_stanza_tree_to_nltk_on_a_stanza_tree_with_nary_nodes_and_brackets():
    from stanza.models.constituency import tree_reader

    raw = tree_reader.read_trees("(ROOT (S (NP (DT The) (NN film) (-LRB- -LRB-) (NN remake) (-RRB- -RRB-)) "
                                 "(VP (VBZ works)) (. .)))")[0]
    raw.children[0].children[0].children[2].children[0].label = "("  # as Stanza's tokenizer gives a bracket
    tree = binarize(parse.stanza_tree_to_nltk(raw))
    assert tree.tokens == ("The", "film", "-LRB-", "remake", "-RRB-", "works", ".")
    assert len(tree) == 6 and spans_of(raw) <= set(tree.spans)  # the 5-word NP and the 3-part S binarised


def test_the_commands_use_stanza_when_its_models_are_installed(stanza_installed, checkpoint, tmp_path, capsys):
    assert cli.main(["parser", "info"]) == 0
    out = capsys.readouterr().out
    assert f"official Stanza models: {stanza_installed / 'en' / 'constituency' / f'{PACKAGE}.pt'}" in out
    assert f"in use: stanza-en-{PACKAGE}" in out

    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    assert cli.main(["parse", "--model", "stanza", "--in", str(tmp_path / "in.txt"), "--out", str(tmp_path / "out.txt"),
                     "--no-cache"]) == 0
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert [list(BinaryTree.from_ptb(line).tokens) for line in lines] == SENTENCES

    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--parser", "stanza", "--format", "json",
                     "--precision", "32", "--no-cache", *TEXTS]) == 0
    predictions = json.loads(capsys.readouterr().out)
    # predict's trees are Stanza's, binarised: the trees `parse` wrote above, one phrase per node
    trees = [BinaryTree.from_ptb(line) for line in lines]
    assert len(predictions) == len(trees) == len(TEXTS)
    for prediction, tree in zip(predictions, trees):
        assert prediction["tokens"] == list(tree.tokens)
        assert [tuple(node["span"]) for node in prediction["nodes"]] == list(tree.spans)
