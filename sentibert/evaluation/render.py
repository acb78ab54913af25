"""Predictions (`sentibert.models.model.TreePrediction`) as text, JSON, HTML or PNG.

Every format is drawn from one JSON document per sentence (`to_json`), so all four show the same numbers.
`sentibert predict --format json` prints a list of them, one per input text:

    {
      "text": "Not bad at all .",                 the tokens joined by spaces
      "tokens": ["Not", "bad", "at", "all", "."], the parser's words, PTB escapes undone (-LRB- is "(")
      "model": "minilm",                          the model that answered: a bundle's name or a checkpoint's path
      "label_names": ["very negative", ...],      its classes, lowest first (`sentibert.data.labels`): SST's five,
                                                  SST-3's three, SST-2's two, EmoInt's four intensities, ...
      "label": 3,                                 the sentence's label: the root node's
      "nodes": [                                  phrase nodes in pre-order, root first (single words are not nodes)
        {
          "span": [0, 5],                         token range [start, end)
          "text": "Not bad at all .",
          "label": 3,                             an index into label_names
          "label_name": "positive",
          "probs": [0.01, 0.05, 0.2, 0.5, 0.24],  one probability per class (4 decimals)
          "children": [{"node": 1}, {"token": 4}],  left then right: a phrase (index into nodes) or a word
                                                  (index into tokens); a one-word sentence has that word twice
          "attention": {                          models with attention only (SentiBERT); the top weights
            "tokens": [{"wordpiece": "bad", "position": 2, "weight": 0.41}, ...],
            "children": [{"node": 1, "weight": 0.5}, {"wordpiece": ".", "position": 5, "weight": 0.3}, ...]
          }
        }
      ]
    }

`attention.tokens` is layer 1 (the phrase over its own wordpieces); `attention.children` is layer 2 (the phrase
over itself, its phrase children and its word children's wordpieces). `position` indexes the encoder's input,
where 0 is [CLS]. Weights are the model's; the top `TOP_ATTENTION` with a non-zero weight are listed.

Colours run from red (the lowest class) to blue (the highest) through grey (`palette`), for any number of classes.
Text is data everywhere: HTML and SVG output escape it, and the PNG turns off matplotlib's $math$ parsing.
"""
from __future__ import annotations

import html
import json
import warnings
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Sequence

from sentibert.data.labels import SST5_NAMES
from sentibert.data.tree import normalize_token

if TYPE_CHECKING:
    from sentibert.models.model import TreePrediction

# Red to blue through grey (ColorBrewer RdBu, with a grey middle that shows on white): SST's five classes.
SCALE = ("#ca0020", "#f4a582", "#c8c8c8", "#92c5de", "#0571b0")
TOP_ATTENTION = 3


def palette(num_classes: int) -> list[str]:
    """One colour per class, evenly spaced along SCALE (linear in RGB): SCALE itself for 5 classes, red, grey and
    blue for 3, red and blue for 2. By hand, not with matplotlib's colormaps: text and HTML never import it."""
    rgb = [[int(colour[i:i + 2], 16) for i in (1, 3, 5)] for colour in SCALE]
    colours = []
    for k in range(num_classes):
        x = k / max(num_classes - 1, 1) * (len(SCALE) - 1)  # the position along SCALE
        i = min(int(x), len(SCALE) - 2)
        colours.append("#" + "".join(f"{round(a + (x - i) * (b - a)):02x}" for a, b in zip(rgb[i], rgb[i + 1])))
    return colours


def is_dark(colour: str) -> bool:
    """Whether text on this colour should be white (its luma is under half)."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


# ---- the document every format is drawn from --------------------------------------------------------------
def to_json(prediction: TreePrediction) -> dict:
    """One sentence's document (the schema is in the module docstring)."""
    tree = prediction.tree
    if None in prediction.labels:
        raise ValueError(f"no prediction for some phrases of {tree.text!r}: the encoder truncated or could not "
                         "read them; give shorter sentences")
    tokens = [normalize_token(t) for t in tree.tokens]
    nodes = []
    for i, ((start, end), children) in enumerate(zip(tree.spans, tree.children)):
        node = {
            "span": [start, end],
            "text": " ".join(tokens[start:end]),
            "label": prediction.labels[i],
            "label_name": prediction.label_names[prediction.labels[i]],
            "probs": [round(p, 4) for p in prediction.probs[i]],
            "children": [{"node": c} if c >= 0 else {"token": -c - 1} for c in children],
        }
        attention = _top_attention(prediction, i)
        if attention:
            node["attention"] = attention
        nodes.append(node)
    return {"text": " ".join(tokens), "tokens": tokens, "model": prediction.model,
            "label_names": list(prediction.label_names), "label": prediction.labels[0], "nodes": nodes}


def _top_attention(prediction: TreePrediction, node: int) -> dict:
    """The largest weights of each attention map the model gave, as JSON keys (see the module docstring)."""
    pieces = prediction.wordpieces

    def key(position: int) -> dict:  # layer 2's keys are the wordpieces, then the nodes
        if position < len(pieces):
            return {"wordpiece": pieces[position], "position": position}
        return {"node": position - len(pieces)}

    out = {}
    for name, maps in (("tokens", prediction.token_attention), ("children", prediction.child_attention)):
        if maps is not None:
            weights, positions = maps[node].sort(descending=True, stable=True)  # ties keep the input's order
            out[name] = [{**key(p), "weight": round(w, 4)}
                         for w, p in zip(weights[:TOP_ATTENTION].tolist(), positions[:TOP_ATTENTION].tolist())
                         if w > 0]  # masked keys weigh exactly 0
    return out


def to_json_text(predictions: Sequence[TreePrediction]) -> str:
    """A JSON list of the documents, one sentence per line."""
    return "[\n" + ",\n".join(json.dumps(to_json(p), ensure_ascii=False) for p in predictions) + "\n]\n"


# ---- text ------------------------------------------------------------------------------------------------------
def to_text(predictions: Sequence[TreePrediction]) -> str:
    """Indented trees, one phrase per line, in the spirit of CoreNLP's sentiment trees:
    `(label name  p0 p1 ...) phrase`, its children indented below it, words bare, under a header naming the model
    and the classes the probabilities are of."""
    docs = [to_json(p) for p in predictions]
    names = docs[0]["label_names"] if docs else list(SST5_NAMES)
    header = ([f"# model: {docs[0]['model']}"] if docs and docs[0]["model"] else []) + [
        f"# (label name  {' '.join(f'p({name})' for name in names)}) phrase"]
    width = max(map(len, names))
    return "\n\n".join(["\n".join(header)] + [_text_tree(doc, width) for doc in docs]) + "\n"


def _text_tree(doc: dict, width: int) -> str:
    lines = []

    def visit(child: dict, depth: int) -> None:
        indent = "  " * depth
        if "token" in child:
            lines.append(indent + doc["tokens"][child["token"]])
            return
        node = doc["nodes"][child["node"]]
        probs = " ".join(f"{p:.2f}" for p in node["probs"])
        lines.append(f"{indent}({node['label']} {node['label_name']:<{width}} {probs}) {node['text']}")
        left, right = node["children"]
        for kid in (left, right) if left != right else (left,):  # a one-word sentence has its word twice
            visit(kid, depth + 1)

    visit({"node": 0}, 0)
    return "\n".join(lines)


# ---- layout, shared by the SVG and the PNG ----------------------------------------------------------------------
LEVEL, RADIUS, MARGIN = 44, 11, 16  # px: between depths, node circles, around the tree
CHAR_WIDTH, MIN_SLOT, FONT_SIZE = 7.5, 30, 12  # px: horizontal room per word character and per word


@dataclass(frozen=True)
class Layout:
    """Pixel positions, y growing downwards: phrase nodes by depth, the words in one row below them."""
    nodes: list[tuple[float, float]]
    words: list[tuple[float, float]]
    width: float
    height: float

    def child(self, child: dict) -> tuple[float, float]:
        if "node" in child:
            return self.nodes[child["node"]]
        x, y = self.words[child["token"]]
        return x, y - FONT_SIZE  # edges end just above the word


def layout(doc: dict) -> Layout:
    slots = [max(MIN_SLOT, CHAR_WIDTH * len(token) + 10) for token in doc["tokens"]]
    ends = list(accumulate(slots, initial=MARGIN))
    word_x = [(a + b) / 2 for a, b in zip(ends, ends[1:])]
    nodes = doc["nodes"]
    depth = [0] * len(nodes)
    for i, node in enumerate(nodes):  # pre-order: a parent comes before its children
        for kid in node["children"]:
            if "node" in kid:
                depth[kid["node"]] = depth[i] + 1
    x = [0.0] * len(nodes)
    for i in reversed(range(len(nodes))):  # so children are placed before their parent
        x[i] = sum(x[k["node"]] if "node" in k else word_x[k["token"]] for k in nodes[i]["children"]) / 2
    top = MARGIN + RADIUS
    word_y = top + (max(depth) + 1) * LEVEL
    return Layout(nodes=[(x[i], top + depth[i] * LEVEL) for i in range(len(nodes))],
                  words=[(wx, word_y) for wx in word_x], width=ends[-1] + MARGIN, height=word_y + MARGIN)


def _edges(doc: dict, lay: Layout):
    for i, node in enumerate(doc["nodes"]):
        for kid in node["children"]:
            yield lay.nodes[i], lay.child(kid)


# ---- HTML ----------------------------------------------------------------------------------------------------------
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; font-weight: normal; margin: 28px 0 4px; }
.legend { display: flex; gap: 14px; padding: 0; list-style: none; }
.legend span { display: inline-block; width: 12px; height: 12px; border-radius: 6px; margin-right: 4px; }
.scroll { overflow-x: auto; }
.pair { display: flex; gap: 24px; align-items: flex-start; } .pair > div { min-width: 0; flex: 1; }
svg .edge { stroke: #999; stroke-width: 1; }
svg .node circle { stroke: #555; stroke-width: 1; }
svg .node { cursor: pointer; outline: none; }
svg .node:hover circle, svg .node:focus circle { stroke: #000; stroke-width: 2.5; }
svg .node.marked circle { stroke: #000; stroke-width: 3; stroke-dasharray: 4 2; }
svg text { font-size: 12px; text-anchor: middle; dominant-baseline: central; }
svg .node text { pointer-events: none; }
svg .node text.light { fill: #fff; }
.tip { position: fixed; z-index: 1; pointer-events: none; max-width: 360px; background: #fff; border: 1px solid #888;
       border-radius: 4px; padding: 8px 10px; box-shadow: 0 2px 8px rgba(0, 0, 0, .25); font-size: 13px; }
.tip .phrase { font-weight: bold; margin: 0 0 6px; }
.tip table { border-collapse: collapse; } .tip td { padding: 1px 4px; }
.tip td.bar { width: 120px; } .tip td.bar span { display: block; height: 10px; }
.tip tr.top { font-weight: bold; }
.tip h3 { font-size: 12px; margin: 8px 0 2px; } .tip ol { margin: 0; padding-left: 22px; }
"""

# Show a node's tooltip while the pointer is over it (or it has keyboard focus); body[data-ready] says it ran.
_JS = """
for (const node of document.querySelectorAll("svg .node")) {
  const tip = document.getElementById(node.dataset.tip);
  const show = (x, y) => {
    tip.hidden = false;
    tip.style.left = Math.min(x + 14, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = Math.min(y + 14, window.innerHeight - tip.offsetHeight - 4) + "px";
  };
  const hide = () => { tip.hidden = true; };
  node.addEventListener("mousemove", (e) => show(e.clientX, e.clientY));
  node.addEventListener("mouseleave", hide);
  node.addEventListener("focus", () => { const r = node.getBoundingClientRect(); show(r.right, r.bottom); });
  node.addEventListener("blur", hide);
}
document.body.dataset.ready = "true";
"""


def to_html(predictions: Sequence[TreePrediction], title: str = "SentiBERT: phrase sentiment") -> str:
    """A self-contained page (inline CSS and JS, nothing fetched): one SVG tree per sentence."""
    e = html.escape
    docs = [to_json(p) for p in predictions]
    sections = [f'<section class="sentence" id="s{s}">\n<h2>{s + 1}. {e(doc["text"])} &rarr; '
                f'<b>{e(doc["label_names"][doc["label"]])}</b></h2>\n{tree_html(doc, s)}\n</section>'
                for s, doc in enumerate(docs)]
    return page(title, "\n".join(sections), label_names=docs[0]["label_names"] if docs else SST5_NAMES,
                model=docs[0]["model"] if docs else None)


def page(title: str, body: str, css: str = "", label_names: Sequence[str] = SST5_NAMES,
         model: str | None = None) -> str:
    """The self-contained page around `body` (HTML, already escaped): the title, the model's name (if given), the
    legend of its classes' colours, and the hover script that wires every tree's boxes (`tree_html`). css: rules
    added to the page's own."""
    e = html.escape
    named = f'<p class="model">Model: <b>{e(model)}</b></p>\n' if model else ""
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(title)}</title>\n'
            f'<style>{_CSS}{css}</style>\n</head>\n<body>\n<h1>{e(title)}</h1>\n{named}{legend(label_names)}\n'
            f'<p>Each circle is a phrase, coloured by its predicted sentiment; hover over it (or tab to it) for the '
            f'phrase, its probabilities and its top attention weights.</p>\n{body}\n<script>{_JS}</script>\n'
            f'</body>\n</html>\n')


def legend(label_names: Sequence[str]) -> str:
    """Each class's colour, number and name, as a list."""
    items = "".join(f'<li><span style="background:{colour}"></span>{k} {html.escape(name)}</li>'
                    for k, (name, colour) in enumerate(zip(label_names, palette(len(label_names)))))
    return f'<ul class="legend">{items}</ul>'


def tree_html(doc: dict, key: int | str, marked: Collection[int] = ()) -> str:
    """One sentence's tree (`to_json`'s document) and its hover boxes; `key` makes their ids unique in a page.
    marked: nodes drawn with a dashed ring (class "marked"; compare: where two models' labels differ)."""
    tips = "".join(_tip(doc, key, i) for i in range(len(doc["nodes"])))
    return f'<div class="scroll">{_svg(doc, key, marked)}</div>\n{tips}'


def _svg(doc: dict, s: int | str, marked: Collection[int] = ()) -> str:
    e = html.escape
    lay = layout(doc)
    parts = [f'<svg class="tree" xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
             f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" role="img" '
             f'aria-label="{e(doc["text"])}">']
    parts += [f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'
              for (x1, y1), (x2, y2) in _edges(doc, lay)]
    colours = palette(len(doc["label_names"]))
    for i, (node, (x, y)) in enumerate(zip(doc["nodes"], lay.nodes)):
        label = node["label"]
        light = ' class="light"' if is_dark(colours[label]) else ""
        kind = "node marked" if i in marked else "node"
        parts.append(f'<g class="{kind}" tabindex="0" data-node="{i}" data-label="{label}" data-tip="tip-{s}-{i}" '
                     f'aria-label="{e(node["text"])}: {e(node["label_name"])}">'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}" fill="{colours[label]}"/>'
                     f'<text x="{x:.1f}" y="{y:.1f}"{light}>{label}</text></g>')
    parts += [f'<text class="word" x="{x:.1f}" y="{y:.1f}">{e(token)}</text>'
              for token, (x, y) in zip(doc["tokens"], lay.words)]
    return "\n".join(parts + ["</svg>"])


def _tip(doc: dict, s: int | str, i: int) -> str:
    """The hover box of node i: its phrase, its distribution, its top attention weights."""
    e = html.escape
    node, names = doc["nodes"][i], doc["label_names"]
    rows = "".join(
        f'<tr{" class=top" if k == node["label"] else ""}><td>{k} {e(name)}</td><td class="bar">'
        f'<span style="width:{100 * p:.1f}%;background:{colour}"></span></td><td>{p:.2f}</td></tr>'
        for k, (name, p, colour) in enumerate(zip(names, node["probs"], palette(len(names)))))

    def key_name(key: dict) -> str:
        if "wordpiece" in key:
            return key["wordpiece"]
        return "itself" if key["node"] == i else f'“{doc["nodes"][key["node"]]["text"]}”'

    attention = node.get("attention", {})
    lists = "".join(
        f'<h3>{heading}</h3><ol>' + "".join(f'<li>{e(key_name(k))} <b>{k["weight"]:.2f}</b></li>' for k in keys)
        + "</ol>"
        for heading, keys in (("Layer 1: attention over tokens", attention.get("tokens")),
                              ("Layer 2: attention over children", attention.get("children"))) if keys)
    return (f'<div class="tip" id="tip-{s}-{i}" hidden><p class="phrase">{e(node["text"])}</p>'
            f'<table>{rows}</table>{lists}</div>')


# ---- PNG -------------------------------------------------------------------------------------------------------
DPI, TITLE_HEIGHT = 100, 28  # layout pixels per inch; px above each tree for its title


def to_png(predictions: Sequence[TreePrediction], path: str | Path, scale: float = 2.0) -> Path:
    """The HTML page's trees as one image, top to bottom, drawn with matplotlib (`scale` x the layout's pixels)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    docs = [to_json(p) for p in predictions]
    layouts = [layout(doc) for doc in docs]
    width = max(lay.width for lay in layouts)
    height = sum(lay.height + TITLE_HEIGHT for lay in layouts)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    font = FONT_SIZE * 72 / DPI  # px -> points
    text = dict(ha="center", va="center", fontsize=font, parse_math=False)
    top = 0.0
    for s, (doc, lay) in enumerate(zip(docs, layouts)):
        top += TITLE_HEIGHT
        # One data unit is one layout pixel on both axes, so the SVG's coordinates carry over as they are.
        ax = fig.add_axes((0, 1 - (top + lay.height) / height, lay.width / width, lay.height / height))
        ax.set_xlim(0, lay.width)
        ax.set_ylim(lay.height, 0)
        ax.axis("off")
        model = f"  (model: {doc['model']})" if doc["model"] else ""
        ax.text(MARGIN, -TITLE_HEIGHT / 2, f"{s + 1}. {doc['label_names'][doc['label']]} ({doc['label']}){model}",
                ha="left", va="center", fontsize=font * 1.1, parse_math=False)  # above the tree: y grows downwards
        colours = palette(len(doc["label_names"]))
        for (x1, y1), (x2, y2) in _edges(doc, lay):
            ax.plot([x1, x2], [y1, y2], color="#999999", linewidth=0.8, zorder=1)
        for node, (x, y) in zip(doc["nodes"], lay.nodes):
            label = node["label"]
            ax.add_patch(Circle((x, y), RADIUS, facecolor=colours[label], edgecolor="#555555", zorder=2))
            ax.text(x, y, str(label), color="white" if is_dark(colours[label]) else "black", zorder=3, **text)
        for token, (x, y) in zip(doc["tokens"], lay.words):
            ax.text(x, y, token, **text)
        top += lay.height
    with warnings.catch_warnings():
        # matplotlib's fonts have no emoji: they are drawn as boxes, which is all a PNG can do without them
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(path, dpi=DPI * scale, format="png")  # the path may be a temporary name without .png
    return Path(path)
