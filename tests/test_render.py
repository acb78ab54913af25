"""Rendering predictions: the JSON document, the text tree, the layout, the HTML page and the PNG (no model needed)."""
import json
import re
import warnings
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from sentibert.data.labels import SST2_NAMES, SST3_NAMES, SST5_NAMES, relabel
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.evaluation import render
from sentibert.models.model import TreePrediction

# Hand-made predictions: the fixture's gold labels are the "predicted" ones, so every label 0-4 appears and the
# expected output is known. Tokens include markup, an HTML entity, an emoji, $ signs and PTB brackets.
TREES = read_trees(FIXTURES / "predict_trees.txt")


COLOURS = render.palette(5)


def make_prediction(tree, label_names=SST5_NAMES) -> TreePrediction:
    """Probabilities peaked on the tree's label; layer 1 spread evenly over each span's wordpieces (one per word,
    after [CLS]); layer 2 split between the node itself (0.6) and its left child (0.4)."""
    n, length = len(tree), len(tree.tokens) + 2
    tokens, children = torch.zeros(n, length), torch.zeros(n, length + n)
    for i, ((start, end), (left, _)) in enumerate(zip(tree.spans, tree.children)):
        tokens[i, start + 1:end + 1] = 1 / (end - start)
        children[i, length + i] = 0.6
        children[i, length + left if left >= 0 else -left] = 0.4  # word w is wordpiece w + 1 = -child
    probs = [[0.6 if k == label else 0.1 for k in range(len(label_names))] for label in tree.labels]
    return TreePrediction(tree=tree, probs=probs, labels=list(tree.labels),
                          wordpieces=["[CLS]", *tree.tokens, "[SEP]"], token_attention=tokens, child_attention=children,
                          label_names=tuple(label_names), model="sst5-model")


def predictions():
    return [make_prediction(tree) for tree in TREES]


def test_json_document_follows_the_schema():
    doc = render.to_json(make_prediction(TREES[0]))  # (3 (1 Not bad) (4 at all))
    assert doc["tokens"] == ["Not", "bad", "at", "all"] and doc["text"] == "Not bad at all" and doc["label"] == 3
    assert doc["model"] == "sst5-model" and doc["label_names"] == list(SST5_NAMES)
    root, left, right = doc["nodes"]
    assert root["span"] == [0, 4] and root["text"] == "Not bad at all"
    assert root["children"] == [{"node": 1}, {"node": 2}]
    assert left["children"] == [{"token": 0}, {"token": 1}]
    assert (left["label"], left["label_name"], left["probs"]) == (1, "negative", [0.1, 0.6, 0.1, 0.1, 0.1])
    assert right["text"] == "at all"
    # layer 1: the span's wordpieces, largest first; layer 2: itself, then its left child (here a word)
    assert [k["wordpiece"] for k in right["attention"]["tokens"]] == ["at", "all"]
    assert right["attention"]["tokens"][0] == {"wordpiece": "at", "position": 3, "weight": 0.5}
    assert right["attention"]["children"] == [{"node": 2, "weight": 0.6},
                                              {"wordpiece": "at", "position": 3, "weight": 0.4}]
    assert root["attention"]["children"] == [{"node": 0, "weight": 0.6}, {"node": 1, "weight": 0.4}]


def test_json_text_is_a_list_one_sentence_per_line_and_undoes_ptb_escapes():
    text = render.to_json_text(predictions())
    assert json.loads(text) == [render.to_json(p) for p in predictions()]
    assert len(text.splitlines()) == len(TREES) + 2  # "[", one line per sentence, "]"
    assert json.loads(text)[2]["tokens"] == ["$5", "(", "$10", ")"]


def test_models_without_attention_have_no_attention_key():
    prediction = make_prediction(TREES[0])
    prediction.token_attention = prediction.child_attention = None
    assert all("attention" not in node for node in render.to_json(prediction)["nodes"])


def test_truncated_phrases_are_refused_with_a_clear_error():
    prediction = make_prediction(TREES[0])
    prediction.probs[2], prediction.labels[2] = None, None
    with pytest.raises(ValueError, match="no prediction for some phrases of 'Not bad at all'.*shorter"):
        render.to_json(prediction)


def test_text_tree_indents_children_under_their_phrase():
    text = render.to_text(predictions()[:1] + predictions()[3:])
    assert text.splitlines()[:3] == ["# model: sst5-model", "# (label name  p(very negative) p(negative) p(neutral) "
                                                           "p(positive) p(very positive)) phrase", ""]
    assert text.splitlines()[3:] == [
        "(3 positive      0.10 0.10 0.10 0.60 0.10) Not bad at all",
        "  (1 negative      0.10 0.60 0.10 0.10 0.10) Not bad",
        "    Not",
        "    bad",
        "  (4 very positive 0.10 0.10 0.10 0.10 0.60) at all",
        "    at",
        "    all",
        "",
        "(4 very positive 0.10 0.10 0.10 0.10 0.60) Wow",
        "  Wow",  # a one-word sentence's word once, though the root has it as both children
    ]


def test_layout_puts_parents_above_and_between_their_children():
    for prediction in predictions():
        doc = render.to_json(prediction)
        lay = render.layout(doc)
        word_xs = [x for x, _ in lay.words]
        assert word_xs == sorted(word_xs) and len({y for _, y in lay.words}) == 1  # one row, in order
        for (x, y), node in zip(lay.nodes, doc["nodes"]):
            kids = [lay.child(k) for k in node["children"]]
            assert all(y < ky for _, ky in kids)
            assert min(kx for kx, _ in kids) <= x <= max(kx for kx, _ in kids)
            assert 0 < x < lay.width and 0 < y < lay.height


class _Elements(HTMLParser):
    """Start tags with their attributes, and all text, of an HTML document."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_has_a_coloured_node_per_phrase_and_escapes_everything():
    page = render.to_html(predictions())
    elements = _Elements(page)
    nodes = [attrs for tag, attrs in elements.tags if tag == "g" and attrs.get("class") == "node"]
    assert len(nodes) == sum(len(t) for t in TREES)
    circles = [attrs for tag, attrs in elements.tags if tag == "circle"]
    assert [c["fill"] for c in circles] == [COLOURS[int(n["data-label"])] for n in nodes]
    assert [int(n["data-label"]) for n in nodes] == [label for t in TREES for label in t.labels]
    tips = {attrs["id"] for tag, attrs in elements.tags if attrs.get("class") == "tip"}
    assert {n["data-tip"] for n in nodes} == tips
    # the input's markup is text, never markup: one script element (ours), and the words read back as typed
    assert [tag for tag, _ in elements.tags].count("script") == 1 and "<script>x=1" not in page
    assert {"<script>x=1</script>", "&amp;", "😀", '"quoted"', "(", "$10"} <= set(elements.text)


def test_html_is_self_contained():
    page = render.to_html(predictions())
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", page)
    # the SVG namespace is the only address, and browsers never fetch it
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"] * len(TREES)


def test_html_tooltip_shows_phrase_probabilities_and_attention():
    page = render.to_html(predictions()[:1])
    tip = re.search(r'<div class="tip" id="tip-0-2" hidden>(.*?)</div>', page).group(1)
    assert '<p class="phrase">at all</p>' in tip
    assert "<tr class=top><td>4 very positive</td>" in tip and "<td>0.60</td>" in tip
    assert "Layer 1: attention over tokens</h3><ol><li>at <b>0.50</b></li><li>all <b>0.50</b></li></ol>" in tip
    assert "Layer 2: attention over children</h3><ol><li>itself <b>0.60</b></li><li>at <b>0.40</b></li>" in tip
    root_tip = re.search(r'<div class="tip" id="tip-0-0" hidden>(.*?)</div>', page).group(1)
    assert "<li>“Not bad” <b>0.40</b></li>" in root_tip  # a phrase child is named by its text


def colours_in(png) -> set[str]:
    """Every colour of an image, as #rrggbb."""
    from matplotlib.image import imread

    rgb = (imread(png)[..., :3] * 255).round().astype(int)
    return {f"#{code:06x}" for code in np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])}


def test_png_draws_every_label_colour_without_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no missing-glyph warning for the emoji
        path = render.to_png(predictions(), tmp_path / "trees.png", scale=1)
    assert set(COLOURS) <= colours_in(path)
    width = max(render.layout(render.to_json(p)).width for p in predictions())
    assert _png_width(path) == pytest.approx(width, abs=1)


def _png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width field



# ---- other label spaces: the names and colours follow the model's classes --------------------------------------
def test_palette_spans_red_to_blue_for_any_class_count():
    assert render.palette(5) == list(render.SCALE)
    assert render.palette(3) == ["#ca0020", "#c8c8c8", "#0571b0"] and render.palette(2) == ["#ca0020", "#0571b0"]
    four = render.palette(4)
    assert len(set(four)) == 4 and (four[0], four[-1]) == ("#ca0020", "#0571b0")
    assert [render.is_dark(c) for c in render.palette(5)] == [True, False, False, False, True]


@pytest.mark.parametrize("names", [SST3_NAMES, SST2_NAMES], ids=["sst3", "sst2"])
def test_a_model_with_other_classes_is_drawn_with_its_names_and_colours(names, tmp_path):
    tree = relabel(TREES[0], "sst3")  # (2 (0 Not bad) (2 at all)) in SST-3; SST-2: (1 (0 Not bad) (1 at all))
    if len(names) == 2:
        tree = BinaryTree.from_ptb("(1 (0 (0 Not) (0 bad)) (1 (1 at) (1 all)))")
    prediction = make_prediction(tree, names)
    doc = render.to_json(prediction)
    assert doc["label_names"] == list(names) and doc["nodes"][1]["label_name"] == names[0]
    assert all(len(node["probs"]) == len(names) for node in doc["nodes"])
    header = render.to_text([prediction]).splitlines()[1]
    assert header == f"# (label name  {' '.join(f'p({name})' for name in names)}) phrase"

    page = render.to_html([prediction])
    elements = _Elements(page)
    circles = [attrs["fill"] for tag, attrs in elements.tags if tag == "circle"]
    assert circles == [render.palette(len(names))[label] for label in tree.labels]
    legend = re.search(r'<ul class="legend">(.*?)</ul>', page).group(1)
    assert re.findall(r"</span>(\d+ [^<]+)</li>", legend) == [f"{k} {name}" for k, name in enumerate(names)]
    assert '<p class="model">Model: <b>sst5-model</b></p>' in page and "very positive" not in page

    path = render.to_png([prediction], tmp_path / "trees.png", scale=1)
    assert {render.palette(len(names))[label] for label in tree.labels} <= colours_in(path)
