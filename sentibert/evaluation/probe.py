"""A behaviour suite of composition (`sentibert probe`): CheckList-style template tests, scored at the root and at
the phrase where the operator attaches.

    suite = load_suite()                          # sentibert/resources/probe/suite_v1.yaml (its README: the lists)
    items = generate(suite)                       # deterministic: the suite's seed, items_per_phenomenon each
    predictions = dict(zip(texts(items), predict(texts(items), model)))   # sentibert.inference.predict
    outcomes = score(items, predictions)
    doc = report(outcomes, suite, model="minilm") # {"phenomena": [{"name", "n", "pass_rate", "ci95", ...}], ...}

A template is a sentence with {slots} filled from the suite's word lists ({noun#2}: another word of `noun`) and
[brackets] around the operator's phrase; paired templates (intensifiers, fillers) add the `base` sentence the
operator is added to, filled with the same words. Each phenomenon's items are split evenly over its templates, each
template's drawn without repetition from its word combinations by a generator seeded with the suite's seed, the
phenomenon and the template's number (editing one template changes no other's items).

An item passes when both expectations hold: `root` on the sentence's root, `phrase` on the smallest parsed node that
covers the bracketed phrase (found through the tokens' character offsets, so any tokenizer works). Expectations:
  positive, negative, not_positive, not_negative   the node's label's polarity (POLARITY)
  same_polarity                                    a pair: the variant's node has the base's polarity
  more_positive, more_negative                     a pair: the variant's node's expected score (SCORES: the
                                                   probabilities times -2..2 for 5 classes) is above / below the base's
A pass rate comes with a 95% Wilson score interval.

Two models on the same items (`sentibert probe --model A --against B`): paired_report(outcomes_a, outcomes_b, suite)
gives per phenomenon both pass rates and B - A with a 95% paired bootstrap interval over items (10,000 resamples,
seed 0); `significant` where it excludes 0.
"""
from __future__ import annotations

import html
import json
import math
import random
import re
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import yaml

from sentibert.data.tree import BinaryTree, normalize_token
from sentibert.evaluation import render

if TYPE_CHECKING:
    from sentibert.models.model import TreePrediction

SUITE_DIR = Path(__file__).resolve().parents[1] / "resources" / "probe"
DEFAULT_SUITE = SUITE_DIR / "suite_v1.yaml"
FAILURES_SHOWN = 20  # failing items listed per phenomenon (every format)
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals
INTERVAL = "Wilson score interval, 95%"

# Per number of classes: each class's polarity, and its value on a scale centred at neutral (the expected score).
POLARITY = {5: (-1, -1, 0, 1, 1), 3: (-1, 0, 1), 2: (-1, 1)}
SCORES = {5: (-2, -1, 0, 1, 2), 3: (-1, 0, 1), 2: (-1, 1)}
POLARITY_NAMES = {-1: "negative", 0: "neutral", 1: "positive"}
SINGLE = ("positive", "negative", "not_positive", "not_negative")
PAIRED = ("same_polarity", "more_positive", "more_negative")
NUMBERS = ("version", "seed", "items_per_phenomenon")  # a suite file's integers, in Suite's order
SLOT = re.compile(r"\{([A-Za-z_]\w*)(?:#(\d+))?\}")  # {list} or {list#2}


class ProbeError(ValueError):
    """A suite file that cannot be used, or predictions that do not fit it; the message says where."""


# ---- the suite ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    text: str
    root: str
    phrase: str
    base: str | None = None


@dataclass(frozen=True)
class Phenomenon:
    name: str
    description: str
    templates: tuple[Template, ...]


@dataclass(frozen=True)
class Suite:
    path: Path
    version: int
    seed: int
    items_per_phenomenon: int
    lists: dict[str, dict]  # name -> {"source": ..., "polarity": ..., "words": [...]}
    phenomena: tuple[Phenomenon, ...]


def load_suite(path: str | Path = DEFAULT_SUITE) -> Suite:
    """Read and check a suite file (the format: suite_v1.yaml's header); ProbeError names what is wrong and where."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ProbeError(f"cannot read the probe suite {path}: {err}") from None
    if not (isinstance(doc, dict) and all(isinstance(doc.get(key), int) for key in NUMBERS)
            and isinstance(doc.get("lists"), dict) and isinstance(doc.get("phenomena"), list)):
        raise ProbeError(f"{path}: not a probe suite: a mapping with {', '.join(NUMBERS)} (integers), lists (a "
                         "mapping) and phenomena (a list) is expected")
    lists = doc["lists"]
    for name, entry in lists.items():
        words = entry.get("words") if isinstance(entry, dict) else None
        if not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise ProbeError(f"{path}: lists.{name}: `words` must be a non-empty list of words")
    phenomena = []
    for i, entry in enumerate(doc["phenomena"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProbeError(f"{path}: phenomena[{i}]: a mapping with a name and templates is expected")
        where = f"{path}: phenomena[{i}] ({entry['name']})"
        entries = entry.get("templates") or []
        templates = [_template(t, lists, f"{where}, template {j + 1}") for j, t in enumerate(entries)]
        if not templates:
            raise ProbeError(f"{where}: no templates")
        phenomena.append(Phenomenon(entry["name"], entry.get("description", ""), tuple(templates)))
    names = [p.name for p in phenomena]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ProbeError(f"{path}: phenomenon names repeat: {', '.join(repeated)}")
    return Suite(path, *(doc[key] for key in NUMBERS), lists, tuple(phenomena))


def _template(entry: dict, lists: dict, where: str) -> Template:
    try:
        template = Template(entry["text"], entry["root"], entry["phrase"], entry.get("base"))
    except (KeyError, TypeError):
        raise ProbeError(f"{where}: a template needs text, root and phrase (and base for a pair)") from None
    for level in (template.root, template.phrase):
        allowed = PAIRED if template.base else SINGLE
        if level not in allowed:
            raise ProbeError(f"{where}: expectation {level!r}; a {'pair' if template.base else 'sentence'} takes "
                             f"{', '.join(allowed)}")
    for text in filter(None, (template.text, template.base)):
        if text.count("[") != 1 or text.count("]") != 1 or text.index("[") > text.index("]"):
            raise ProbeError(f"{where}: {text!r} must mark the operator's phrase with one [ ... ]")
        for name, _ in SLOT.findall(text):
            if name not in lists:
                raise ProbeError(f"{where}: {{{name}}} is not one of the lists ({', '.join(lists)})")
    if template.base and not set(SLOT.findall(template.base)) <= set(SLOT.findall(template.text)):
        raise ProbeError(f"{where}: the base has a slot that the text does not")
    return template


# ---- items -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sentence:
    text: str
    span: tuple[int, int]  # the operator's phrase: characters [start, end) of text


@dataclass(frozen=True)
class Item:
    phenomenon: str
    template: int  # its number in the phenomenon, from 1
    sentence: Sentence
    root: str
    phrase: str
    base: Sentence | None = None


def generate(suite: Suite) -> list[Item]:
    """The suite's items, phenomenon by phenomenon, template by template; the same suite gives the same items."""
    items = []
    for phenomenon in suite.phenomena:
        share, extra = divmod(suite.items_per_phenomenon, len(phenomenon.templates))
        for t, template in enumerate(phenomenon.templates, start=1):
            rng = random.Random(f"{suite.seed}:{phenomenon.name}:{t}")
            for values in _draw(template.text, suite.lists, share + (t <= extra), rng):
                items.append(Item(phenomenon.name, t, _fill(template.text, values), template.root, template.phrase,
                                  _fill(template.base, values) if template.base else None))
    return items


def _draw(text: str, lists: dict, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Up to `count` different fillings of text's slots, at random; a list's slots take different words."""
    slots = list(dict.fromkeys(SLOT.findall(text)))  # (list, number) in order of appearance
    choices = [lists[name]["words"] for name, _ in slots]
    total = math.prod(len(c) for c in choices)
    seen, drawn = set(), []
    while len(drawn) < count and len(seen) < total:
        index = rng.randrange(total)
        if index in seen:
            continue
        seen.add(index)
        words = []
        for options in choices:  # index in mixed radix: one digit per slot
            index, digit = divmod(index, len(options))
            words.append(options[digit])
        by_list = [(name, word) for (name, _), word in zip(slots, words)]
        if len(set(by_list)) == len(by_list):
            drawn.append({_slot(*slot): word for slot, word in zip(slots, words)})
    return drawn


def _slot(name: str, number: str) -> str:
    return f"{{{name}#{number}}}" if number else f"{{{name}}}"


def _fill(template: str, values: dict[str, str]) -> Sentence:
    text = SLOT.sub(lambda m: values[m.group(0)], template)
    text = re.sub(r"\b([Aa]) ([\[\]]?[aeiouAEIOU])", r"\1n \2", text)  # "a engaging" -> "an engaging"
    start, end = text.index("["), text.index("]") - 1
    return Sentence(text.replace("[", "").replace("]", ""), (start, end))


def texts(items: Sequence[Item]) -> list[str]:
    """Every sentence the items need predicted (variants and bases), each once, in order."""
    return list(dict.fromkeys(s.text for item in items for s in (item.sentence, item.base) if s))


# ---- expectations ------------------------------------------------------------------------------------------------
def polarity(probs: Sequence[float]) -> int:
    """-1, 0 or 1: the polarity of the most probable class."""
    return _classes(POLARITY, probs)[max(range(len(probs)), key=probs.__getitem__)]


def expected_score(probs: Sequence[float]) -> float:
    """The expected class on a scale centred at neutral (5 classes: -2..2; 2 classes: 2 p(positive) - 1)."""
    return sum(p * v for p, v in zip(probs, _classes(SCORES, probs)))


def _classes(table: dict, probs: Sequence[float]) -> tuple[int, ...]:
    if len(probs) not in table:
        raise ProbeError(f"a model with {len(probs)} classes: the probe reads 5 (SST), 3 or 2-class sentiment")
    return table[len(probs)]


CHECKS = {
    "positive": lambda node, base: polarity(node) == 1,
    "negative": lambda node, base: polarity(node) == -1,
    "not_positive": lambda node, base: polarity(node) != 1,
    "not_negative": lambda node, base: polarity(node) != -1,
    "same_polarity": lambda node, base: polarity(node) == polarity(base),
    "more_positive": lambda node, base: expected_score(node) > expected_score(base),
    "more_negative": lambda node, base: expected_score(node) < expected_score(base),
}


def meets(expectation: str, probs: Sequence[float], base_probs: Sequence[float] | None = None) -> bool:
    """Whether a node's probabilities meet an expectation (a pair's compare with the base's node)."""
    return CHECKS[expectation](probs, base_probs)


def covering_node(tree: BinaryTree, text: str, span: tuple[int, int]) -> int:
    """The smallest node of tree (parsed from text) covering the characters span of text."""
    offsets, at = [], 0
    for token in tree.tokens:
        word = normalize_token(token)
        start = text.find(word, at)
        if start < 0:
            raise ProbeError(f"the parser's token {word!r} is not in {text!r}")
        offsets.append((start, start + len(word)))
        at = start + len(word)
    inside = [i for i, (a, b) in enumerate(offsets) if a < span[1] and b > span[0]]
    first, last = inside[0], inside[-1] + 1
    return min((n for n, (a, b) in enumerate(tree.spans) if a <= first and last <= b),
               key=lambda n: tree.spans[n][1] - tree.spans[n][0])


@dataclass(frozen=True)
class Outcome:
    item: Item
    prediction: TreePrediction
    node: int  # the node the phrase expectation is about
    root_pass: bool
    phrase_pass: bool
    base_prediction: TreePrediction | None = None
    base_node: int | None = None

    @property
    def passed(self) -> bool:
        return self.root_pass and self.phrase_pass


def score(items: Sequence[Item], predictions: Mapping[str, TreePrediction]) -> list[Outcome]:
    """Each item's outcome, from the predictions of every text of `texts(items)`."""
    outcomes = []
    for item in items:
        prediction = predictions[item.sentence.text]
        node = covering_node(prediction.tree, item.sentence.text, item.sentence.span)
        base = base_node = None
        base_root = base_phrase = None
        if item.base:
            base = predictions[item.base.text]
            base_node = covering_node(base.tree, item.base.text, item.base.span)
            base_root, base_phrase = base.probs[0], base.probs[base_node]
        outcomes.append(Outcome(item, prediction, node, meets(item.root, prediction.probs[0], base_root),
                                meets(item.phrase, prediction.probs[node], base_phrase), base, base_node))
    return outcomes


# ---- the report ------------------------------------------------------------------------------------------------
def wilson(passes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion passes / n (the whole [0, 1] when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = passes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(hits: list[bool]) -> tuple[float, list[float]]:
    low, high = wilson(sum(hits), len(hits))
    return round(sum(hits) / len(hits), 4), [round(low, 4), round(high, 4)]


def shown_failures(outcomes: Sequence[Outcome], per_phenomenon: int = FAILURES_SHOWN) -> list[Outcome]:
    """The first failing items of each phenomenon, at most per_phenomenon of them."""
    return [o for _, group in groupby(outcomes, key=lambda o: o.item.phenomenon)
            for o in [o for o in group if not o.passed][:per_phenomenon]]


def report(outcomes: Sequence[Outcome], suite: Suite, failures: int = FAILURES_SHOWN, **about) -> dict:
    """The JSON document: the suite, `about` (model, parser, ...), the model's class names, per phenomenon n and the
    pass rates with their intervals (both levels, the root, the phrase), and the first `failures` failing items of
    each phenomenon."""
    rows = []
    for phenomenon in suite.phenomena:
        mine = [o for o in outcomes if o.item.phenomenon == phenomenon.name]
        if not mine:
            continue
        row = {"name": phenomenon.name, "description": phenomenon.description, "n": len(mine)}
        for key, hits in (("", [o.passed for o in mine]), ("root_", [o.root_pass for o in mine]),
                          ("phrase_", [o.phrase_pass for o in mine])):
            row[f"{key}pass_rate"], row[f"{key}ci95"] = _rate(hits)
        rows.append(row)
    names = list(outcomes[0].prediction.label_names) if outcomes else []
    return {"suite": suite.path.name, "suite_version": suite.version, "seed": suite.seed, **about,
            "label_names": names, "interval": INTERVAL, "phenomena": rows,
            "failures": [_failure(o) for o in shown_failures(outcomes, failures)]}


def _failure(outcome: Outcome) -> dict:
    item, prediction = outcome.item, outcome.prediction

    def level(expectation: str, passed: bool, node: int, base_node: int | None) -> dict:
        doc = {"expected": expectation, "passed": passed, "text": prediction.tree.phrase(node)}
        doc.update(_node(prediction, node))
        if outcome.base_prediction is not None:
            doc["base"] = {"text": outcome.base_prediction.tree.phrase(base_node),
                           **_node(outcome.base_prediction, base_node)}
        return doc

    doc = {"phenomenon": item.phenomenon, "template": item.template, "text": item.sentence.text}
    if item.base:
        doc["base"] = item.base.text
    doc["root"] = level(item.root, outcome.root_pass, 0, 0)
    doc["phrase"] = level(item.phrase, outcome.phrase_pass, outcome.node, outcome.base_node)
    return doc


def _node(prediction: TreePrediction, node: int) -> dict:
    probs = prediction.probs[node]
    label = prediction.labels[node]
    name = prediction.label_names[label] if prediction.label_names else str(label)
    return {"label": label, "label_name": name, "polarity": POLARITY_NAMES[polarity(probs)],
            "score": round(expected_score(probs), 4)}


# ---- formats ---------------------------------------------------------------------------------------------------
def to_json_text(doc: dict) -> str:
    """The report as JSON, one phenomenon and one failing item per line."""
    def value(v) -> str:
        if isinstance(v, list) and v and isinstance(v[0], dict):
            return "[\n" + ",\n".join(f"    {json.dumps(x, ensure_ascii=False)}" for x in v) + "\n  ]"
        return json.dumps(v, ensure_ascii=False)

    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in doc.items()) + "\n}\n"


def _percent(rate: float, ci: list[float]) -> str:
    return f"{100 * rate:5.1f} [{100 * ci[0]:4.1f}, {100 * ci[1]:5.1f}]"


def _title(doc: dict) -> str:
    return (f"probe: {doc['suite']} (version {doc['suite_version']}, seed {doc['seed']}), model "
            f"{doc.get('model', '?')}; pass rates in %, with the {doc['interval']}")


def _describe(level: dict, name: str) -> str:
    """One expectation and what the model gave: `phrase "is not bad": expected not_negative, got 1 negative (...)`."""
    def label(node: dict) -> str:
        return f"{node['label']} {node['label_name']} (score {node['score']:+.2f})"

    got = label(level)
    if "base" in level:
        got += f"; base \"{level['base']['text']}\": {label(level['base'])}"
    return f"{name} \"{level['text']}\": expected {level['expected']}, got {got}"


def to_text(doc: dict) -> str:
    width = max(len(row["name"]) for row in doc["phenomena"])
    lines = [_title(doc), "", f"{'phenomenon':<{width}}     n  {'pass':^21}  {'root':^21}  {'phrase':^21}"]
    lines += [f"{row['name']:<{width}} {row['n']:>5}  {_percent(row['pass_rate'], row['ci95'])}  "
              f"{_percent(row['root_pass_rate'], row['root_ci95'])}  "
              f"{_percent(row['phrase_pass_rate'], row['phrase_ci95'])}" for row in doc["phenomena"]]
    if doc["failures"]:
        lines += ["", "failing items (the first of each phenomenon):"]
    for failure in doc["failures"]:
        base = f" (base: {failure['base']})" if "base" in failure else ""
        lines += [f"- [{failure['phenomenon']}] {failure['text']}{base}"]
        lines += [f"    {_describe(failure[key], key)}" for key in ("root", "phrase") if not failure[key]["passed"]]
    return "\n".join(lines) + "\n"


def to_markdown(doc: dict) -> str:
    def cell(rate: float, ci: list[float]) -> str:
        return f"{100 * rate:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"

    lines = [_title(doc), "", "| phenomenon | n | pass | root | phrase |", "|---|---|---|---|---|"]
    lines += [f"| {row['name']} | {row['n']} | {cell(row['pass_rate'], row['ci95'])} | "
              f"{cell(row['root_pass_rate'], row['root_ci95'])} | {cell(row['phrase_pass_rate'], row['phrase_ci95'])} |"
              for row in doc["phenomena"]]
    return "\n".join(lines) + "\n"


_CSS = """
table.rates { border-collapse: collapse; } table.rates td, table.rates th { padding: 2px 10px; text-align: right; }
table.rates td:first-child, table.rates th:first-child { text-align: left; }
.check { margin: 2px 0; } .check.fail { color: #b00020; }
"""


def to_html(doc: dict, outcomes: Sequence[Outcome], failures: int = FAILURES_SHOWN) -> str:
    """The table, then each shown failing item with its tree (and its base's, side by side), drawn as `predict`
    draws them (`sentibert.evaluation.render`)."""
    e = html.escape
    rows = "".join(f"<tr><td>{e(row['name'])}</td><td>{row['n']}</td><td>{_percent(row['pass_rate'], row['ci95'])}"
                   f"</td><td>{_percent(row['root_pass_rate'], row['root_ci95'])}</td>"
                   f"<td>{_percent(row['phrase_pass_rate'], row['phrase_ci95'])}</td></tr>" for row in doc["phenomena"])
    body = [f"<p>{e(_title(doc))}</p>", '<table class="rates"><tr><th>phenomenon</th><th>n</th><th>pass</th>'
            f"<th>root</th><th>phrase</th></tr>{rows}</table>"]
    for k, (outcome, failure) in enumerate(zip(shown_failures(outcomes, failures), doc["failures"])):
        checks = "".join(f'<p class="check{"" if failure[key]["passed"] else " fail"}">'
                         f'{e(_describe(failure[key], key))}</p>' for key in ("root", "phrase"))
        trees = [("", outcome.prediction, k)]
        if outcome.base_prediction is not None:
            trees = [("base: ", outcome.base_prediction, f"{k}b"), ("with the operator: ", outcome.prediction, k)]
        docs = [(caption, render.to_json(p), key) for caption, p, key in trees]
        sides = "".join(f'<div><p>{e(caption + d["text"])}</p>{render.tree_html(d, key)}</div>'
                        for caption, d, key in docs)
        body.append(f'<section class="sentence" id="s{k}">\n<h2>{k + 1}. [{e(failure["phenomenon"])}] '
                    f'{e(failure["text"])}</h2>\n{checks}\n<div class="pair">{sides}</div>\n</section>')
    return render.page(f"SentiBERT probe: {doc.get('model') or 'a model'}", "\n".join(body), css=_CSS,
                       label_names=doc["label_names"], model=doc.get("model"))


# The report -> str, by --format; html needs the trees too.
REPORT_RENDERERS = {"text": to_text, "md": to_markdown, "json": to_json_text}


# ---- two models on the same items ---------------------------------------------------------------------------------
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def paired_difference(a: Sequence[bool], b: Sequence[bool], resamples: int = RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> tuple[float, tuple[float, float]]:
    """B's pass rate minus A's over the same items, with a 95% paired bootstrap interval: the items are resampled
    with replacement, each keeping both models' outcomes, and the 2.5th and 97.5th percentiles of the difference."""
    if len(a) != len(b) or not a:
        raise ProbeError(f"a paired difference needs the same items, at least one: {len(a)} and {len(b)} given")
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(diffs), size=(resamples, len(diffs)))
    low, high = np.percentile(diffs[draws].mean(axis=1), [2.5, 97.5])
    return float(diffs.mean()), (float(low), float(high))


def paired_report(a: Sequence[Outcome], b: Sequence[Outcome], suite: Suite, resamples: int = RESAMPLES,
                  seed: int = BOOTSTRAP_SEED, **about) -> dict:
    """Two models' outcomes on the same items (in the same order), per phenomenon: both pass rates with their Wilson
    intervals, and the difference B - A with its paired bootstrap interval; `significant` when it excludes 0.
    `about` says what A and B are (model_a, model_b, ...)."""
    if [o.item for o in a] != [o.item for o in b]:
        raise ProbeError("the two models' outcomes are not on the same items, in the same order")
    rows = []
    for phenomenon in suite.phenomena:
        pairs = [(x.passed, y.passed) for x, y in zip(a, b) if x.item.phenomenon == phenomenon.name]
        if not pairs:
            continue
        hits_a, hits_b = zip(*pairs)
        row = {"name": phenomenon.name, "n": len(pairs)}
        row["a_pass_rate"], row["a_ci95"] = _rate(list(hits_a))
        row["b_pass_rate"], row["b_ci95"] = _rate(list(hits_b))
        difference, (low, high) = paired_difference(hits_a, hits_b, resamples, seed)
        row.update(difference=round(difference, 4), difference_ci95=[round(low, 4), round(high, 4)],
                   significant=bool(low > 0 or high < 0))
        rows.append(row)
    return {"suite": suite.path.name, "suite_version": suite.version, "seed": suite.seed, **about,
            "interval": INTERVAL, "difference_interval": f"paired bootstrap over items, 95% percentile interval, "
            f"{resamples:,} resamples, seed {seed}", "phenomena": rows}


def _pair_rows(doc: dict) -> list[tuple[str, int, str, str, str]]:
    """Per phenomenon: name, n, A's and B's pass % [CI], and B - A in points [CI] (* where the CI excludes 0)."""
    def cell(rate: float, ci: list[float], sign: str = "") -> str:
        return f"{100 * rate:{sign}.1f} [{100 * ci[0]:{sign}.1f}, {100 * ci[1]:{sign}.1f}]"

    return [(row["name"], row["n"], cell(row["a_pass_rate"], row["a_ci95"]), cell(row["b_pass_rate"], row["b_ci95"]),
             cell(row["difference"], row["difference_ci95"], "+") + (" *" if row["significant"] else ""))
            for row in doc["phenomena"]]


def _pair_title(doc: dict) -> str:
    return (f"probe: {doc['suite']} (version {doc['suite_version']}, seed {doc['seed']}); A = {doc.get('model_a', '?')}"
            f", B = {doc.get('model_b', '?')}; pass rates in % with the {doc['interval']}; B - A in points with a "
            f"{doc['difference_interval']}; * where it excludes 0")


def pair_to_text(doc: dict) -> str:
    rows = _pair_rows(doc)
    width = max(len(row[0]) for row in rows)
    lines = [_pair_title(doc), "", f"{'phenomenon':<{width}}     n  {'A':^19}  {'B':^19}  B - A"]
    lines += [f"{name:<{width}} {n:>5}  {a:<19}  {b:<19}  {d}" for name, n, a, b, d in rows]
    return "\n".join(lines) + "\n"


def pair_to_markdown(doc: dict) -> str:
    lines = [_pair_title(doc), "", "| phenomenon | n | A | B | B − A |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {a} | {b} | {d} |" for name, n, a, b, d in _pair_rows(doc)]
    return "\n".join(lines) + "\n"


PAIR_RENDERERS = {"text": pair_to_text, "md": pair_to_markdown, "json": to_json_text}
