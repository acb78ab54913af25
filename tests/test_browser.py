"""The HTML page in a real browser: headless Chromium loads it from disk, then we read its DOM and a screenshot.

Skipped where Chromium is not installed (Debian: `apt-get install -y chromium`), except in CI, which installs it. The page must work offline, so
Chromium runs with its background networking off and a throw-away profile.
"""
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from test_render import TREES, colours_in, predictions

from sentibert.evaluation import render
from sentibert.evaluation.render import palette

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(name)), None)
if BROWSER is None and os.environ.get("CI"):  # CI installs Chromium (.ci/run): there a missing one is a failure
    raise RuntimeError("CI: chromium is not installed (apt-get install -y chromium)")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium is not installed (apt-get install -y chromium)")

# Simulates hovering over the second sentence's root: the page's own handlers must show that node's tooltip.
HOVER = """<script>
const node = document.querySelector('#s1 .node[data-node="0"]');
const box = node.getBoundingClientRect();
node.dispatchEvent(new MouseEvent("mousemove", {clientX: box.x + 5, clientY: box.y + 5, bubbles: true}));
</script>
</body>"""


def chromium(tmp_path, page: str, *args: str) -> str:
    html_file = tmp_path / "page.html"
    html_file.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",  # small /dev/shm in CI
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}",
         *args, html_file.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class DOM(HTMLParser):
    """Elements (tag, attributes, their own text) of a dumped DOM."""

    def __init__(self, page: str):
        super().__init__()
        self.elements, self.open = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        element = [tag, dict(attrs), ""]
        self.elements.append(element)
        if tag != "meta":  # the page's one void element; self-closed SVG elements get an end tag call
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self.open:
            self.open[-1][2] += data

    def find(self, tag, cls=None):
        return [(attrs, text) for t, attrs, text in self.elements
                if t == tag and (cls is None or cls in attrs.get("class", "").split())]


def test_the_browser_builds_one_coloured_node_per_phrase_and_shows_the_text(tmp_path):
    dom = DOM(chromium(tmp_path, render.to_html(predictions()), "--dump-dom"))
    assert dom.find("body")[0][0].get("data-ready") == "true"  # the page's script ran to its end
    nodes = dom.find("g", "node")
    assert len(nodes) == sum(len(tree) for tree in TREES)
    assert [int(attrs["data-label"]) for attrs, _ in nodes] == [label for tree in TREES for label in tree.labels]
    circles = [attrs["fill"] for attrs, _ in dom.find("circle")]
    assert circles == [palette(5)[int(attrs["data-label"])] for attrs, _ in nodes]
    drawn = [text for attrs, text in dom.find("text") if attrs.get("class") != "word"]
    assert drawn == [str(label) for tree in TREES for label in tree.labels]  # each node's circle has its label
    words = [text for _, text in dom.find("text", "word")]
    assert words == [render.to_json(p)["tokens"][i] for p in predictions() for i in range(len(p.tree.tokens))]
    assert "<script>x=1</script>" in words and "&amp;" in words and "😀" in words  # text, not markup
    assert len(dom.find("script")) == 1
    assert all(attrs.get("hidden") is not None for attrs, _ in dom.find("div", "tip"))  # nothing shown yet


def test_hovering_a_node_shows_its_tooltip(tmp_path):
    page = render.to_html(predictions()).replace("</body>", HOVER)
    dom = DOM(chromium(tmp_path, page, "--dump-dom"))
    shown = [attrs["id"] for attrs, _ in dom.find("div", "tip") if attrs.get("hidden") is None]
    assert shown == ["tip-1-0"]
    [(tip, _)] = [(attrs, text) for attrs, text in dom.find("div", "tip") if attrs["id"] == "tip-1-0"]
    assert "left:" in tip["style"] and "top:" in tip["style"]
    phrase = [text for _, text in dom.find("p", "phrase")][len(TREES[0])]  # the first tip of sentence 2
    assert phrase == 'The <script>x=1</script> "quoted" &amp; 😀'


def test_screenshot_shows_the_colours_of_the_predicted_labels(tmp_path):
    # labels 0, 2, 0, 1 (grey, the neutral colour, also turns up where grey edges are smoothed: keep it expected)
    prediction = predictions()[1]
    page = render.to_html([prediction]).replace("</head>", "<style>.legend { display: none }</style></head>")
    chromium(tmp_path, page, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=900,600")
    drawn = colours_in(tmp_path / "shot.png") & set(palette(5))  # with the legend hidden, only nodes are coloured
    assert drawn == {palette(5)[label] for label in prediction.labels}
