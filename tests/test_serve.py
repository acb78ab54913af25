"""`sentibert serve` on a tiny random model and a fake parser: the JSON API over HTTP (starlette's TestClient),
the command, and the page in headless Chromium (typed into and clicked through the DevTools protocol).

Skipped without the serve extra (starlette, uvicorn; httpx for the TestClient): `pip install -e ".[dev]"`.
"""
import json
import logging
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
import transformers

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402
from fakes import RightBranchingParser  # noqa: E402

from sentibert import bundles, cli  # noqa: E402
from sentibert.bundles import installed_bundles  # noqa: E402
from sentibert.data.labels import SST5_NAMES  # noqa: E402
from sentibert.evaluation import compare, render  # noqa: E402
from sentibert.inference import app as serve  # noqa: E402
from sentibert.inference import predict as predict_module  # noqa: E402
from sentibert.inference.predict import Pipeline, load_network, predict  # noqa: E402
from sentibert.parsing.parse import ParserError  # noqa: E402

transformers.logging.set_verbosity_error()

TEXTS = ["not bad at all", "a dull , lifeless film", "great", "Tom &amp; Jerry 😀 <b>bold</b>"]


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_network(checkpoint)


@pytest.fixture(scope="module")
def other_checkpoint(tiny_model):
    """Another random model: it labels 11 of TEXTS' 12 phrase nodes otherwise than `checkpoint`."""
    return tiny_model(seed=1)


@pytest.fixture
def offers_other(other_checkpoint, monkeypatch):
    """Servers created now offer other_checkpoint by the name "other", as they offer the bundles."""
    monkeypatch.setitem(bundles.BUNDLES, "other", other_checkpoint)


@pytest.fixture(scope="module")
def client(model, checkpoint):
    with TestClient(serve.create_app(Pipeline(model, RightBranchingParser()))) as client:
        yield client


def post(client, body, **kwargs):
    """POST /api/predict with a JSON body (or raw bytes with content=...)."""
    return client.post("/api/predict", json=body, **kwargs)


def cli_json(checkpoint, texts, capsys) -> list:
    """What `sentibert predict --format json` prints for these texts (with the fake_parser fixture: the same parser)."""
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--format", "json", *texts]) == 0
    return json.loads(capsys.readouterr().out)


# ---- the API -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [{"texts": TEXTS}, {"text": TEXTS[0]}], ids=["texts", "text"])
def test_predict_answers_what_sentibert_predict_json_prints(client, checkpoint, fake_parser, capsys, body):
    texts = body.get("texts") or [body["text"]]
    response = post(client, body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == cli_json(checkpoint, texts, capsys)
    assert [doc["text"] for doc in response.json()] == texts


def test_render_html_adds_each_tree_as_the_static_page_draws_it(client):
    plain = post(client, {"texts": TEXTS}).json()
    drawn = post(client, {"texts": TEXTS}, params={"render": "html"}).json()
    assert [{k: v for k, v in doc.items() if k not in ("html", "legend")} for doc in drawn] == plain
    for s, doc in enumerate(drawn):
        assert doc["html"] == render.tree_html(plain[s], s) and doc["legend"] == render.legend(plain[s]["label_names"])
        assert doc["html"].count('<g class="node"') == doc["html"].count('<div class="tip"') == len(doc["nodes"])
    assert "&lt;b&gt;bold&lt;/b&gt;" in drawn[3]["html"] and "<b>bold" not in drawn[3]["html"]  # text, escaped


def test_health_names_the_model_the_parser_and_the_limits(client, checkpoint):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": {"name": str(checkpoint), "class": "SentiBERT", "encoder": "tiny", "label_names": list(SST5_NAMES),
                  "max_wordpieces": 128, "device": "cpu"},
        "models": [str(checkpoint), *installed_bundles()],
        "parser": "RightBranchingParser",
        "limits": {"body": 65536, "texts": 64, "chars": 1000},
    }


def test_the_page_is_self_contained(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<textarea id="q"' in page and '<button type="submit">' in page and "api/predict?render=html" in page
    assert '<select id="compare"><option value="" selected>none</option>' in page  # no comparison unless chosen
    assert "://" not in page and " src=" not in page  # nothing fetched from elsewhere: it works offline
    assert "default-src 'none'" in response.headers["content-security-policy"]


JSON = {"content-type": "application/json"}
BAD_REQUESTS = [  # (request, status, message)
    (dict(content=b"", headers=JSON), 400, "the request body is empty"),
    (dict(content=b"  \n", headers=JSON), 400, "the request body is empty"),
    (dict(content=b'{"texts": ["fine"', headers=JSON), 400, "not JSON (Expecting"),
    (dict(content=b'{"text": "caf\xe9"}', headers=JSON), 400, "not JSON ("),  # Latin-1, not UTF-8
    (dict(content=b"[" * 50_000, headers=JSON), 400, "not JSON: nested too deeply"),
    (dict(json=["fine"]), 400, "the request body is an array, not an object"),
    (dict(json="fine"), 400, "the request body is a string, not an object"),
    (dict(json={}), 400, 'expected one key, "texts" or "text" (and "model", "compare"), not none'),
    (dict(json={"txt": "fine"}), 400, 'expected one key, "texts" or "text" (and "model", "compare"), not "txt"'),
    (dict(json={"text": "fine", "texts": ["good"]}), 400, 'not "text", "texts"'),
    (dict(json={"text": 3}), 400, '"text" is a number, not a string'),
    (dict(json={"text": ["fine"]}), 400, '"text" is an array, not a string'),
    (dict(json={"texts": "fine"}), 400, '"texts" is a string, not an array of strings'),
    (dict(json={"texts": ["fine", None]}), 400, "texts:2 is null, not a string"),
    (dict(json={"texts": ["fine", {"text": "good"}]}), 400, "texts:2 is an object, not a string"),
    (dict(json={"texts": []}), 422, "no text to predict"),
    (dict(json={"texts": ["fine", " \t"]}), 422, "texts:2: empty text"),
    (dict(json={"text": ""}), 422, "text:1: empty text"),
    (dict(json={"texts": ["fine"] * 65}), 422, "65 texts, more than 64 per request"),
    (dict(json={"texts": ["fine", "a" * 1001]}), 422, "texts:2: 1001 characters, more than the limit of 1000"),
    (dict(json={"texts": ["fine", "good " * 130]}), 422, "texts:2: 132 wordpieces, more than the encoder's limit"),
    (dict(json={"texts": ["fine", "\u200b"]}), 422, "texts:2: '\\u200b': the encoder reads no wordpieces in it"),
    (dict(json={"text": "\x01"}), 422, "text:1: '\\x01': the encoder reads no wordpieces in it"),
    (dict(json={"text": "fine", "model": 3}), 400, '"model" is a number, not a string'),
    (dict(json={"text": "fine", "model": "nosuch"}), 422, "model 'nosuch' is not one this server offers: choose "),
    (dict(json={"text": "fine", "compare": 3}), 400, '"compare" is a number, not a string'),
    (dict(json={"text": "fine", "compare": "nosuch"}), 422, '"compare": model \'nosuch\' is not one this server'),
    (dict(content=b'{"texts": ["' + b"a" * 70_000 + b'"]}', headers=JSON), 413, "the request body is over 65536"),
    (dict(content=iter([b'{"texts": ["'] + [b"a" * 1000] * 70 + [b'"]}']), headers=JSON), 413,  # chunked:
     "the request body is over 65536"),  # no Content-Length, counted as it comes
    (dict(content=b'{"text": "fine"}', headers={"content-type": "text/plain"}), 415, "Content-Type: application/json"),
    (dict(content=b'{"text": "fine"}'), 415, "Content-Type: application/json"),
    (dict(json={"text": "fine"}, params={"render": "svg"}), 400, "render=svg: the only rendering is render=html"),
]


@pytest.mark.parametrize("request_, status, message", BAD_REQUESTS, ids=[m for _, _, m in BAD_REQUESTS])
def test_bad_input_is_a_json_error_and_the_server_keeps_answering(client, request_, status, message):
    response = client.post("/api/predict", **request_)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]
    assert client.get("/api/health").status_code == 200
    assert post(client, {"text": "still fine"}).json()[0]["text"] == "still fine"


def test_other_paths_and_methods_are_json_errors(client):
    response = client.get("/api/predict")
    assert response.status_code == 405 and response.json() == {"error": "GET /api/predict: Method Not Allowed"}
    assert response.headers["allow"] == "POST"
    response = client.get("/nothing/here")
    assert response.status_code == 404 and response.json() == {"error": "GET /nothing/here: Not Found"}


class FlakyParser(RightBranchingParser):
    """Fails once with `error`, then parses."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def parse(self, texts, source="input"):
        if self.error:
            error, self.error = self.error, None
            raise error
        return super().parse(texts, source)


def test_a_parser_refusal_is_a_422(model):
    parser = FlakyParser(ParserError("texts:1: the tokenizer found 2 sentences in 'Fine. Good.', not one"))
    with TestClient(serve.create_app(Pipeline(model, parser))) as client:
        response = post(client, {"texts": ["Fine. Good."]})
        assert response.status_code == 422 and "found 2 sentences" in response.json()["error"]
        assert post(client, {"texts": ["Fine. Good."]}).status_code == 200


def test_a_bug_is_a_logged_500_and_does_not_stop_the_server(model, caplog):
    with TestClient(serve.create_app(Pipeline(model, FlakyParser(KeyError("bug"))))) as client:
        with caplog.at_level(logging.ERROR, logger="sentibert.inference.app"):
            response = post(client, {"text": "fine"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error: the server's log has the details"}
        assert "POST /api/predict failed" in caplog.text and "KeyError: 'bug'" in caplog.text  # the traceback
        assert post(client, {"text": "fine"}).status_code == 200  # and the lock was released


def test_inference_does_not_block_the_event_loop(model):
    entered, release = threading.Event(), threading.Event()

    class SlowParser(RightBranchingParser):
        def parse(self, texts, source="input"):
            entered.set()
            assert release.wait(10)
            return super().parse(texts, source)

    with TestClient(serve.create_app(Pipeline(model, SlowParser()))) as client:
        answers = []
        worker = threading.Thread(target=lambda: answers.append(post(client, {"text": "slow one"})))
        worker.start()
        try:
            assert entered.wait(10)
            assert client.get("/api/health").status_code == 200  # answered while the model is busy
            assert client.get("/").status_code == 200
        finally:
            release.set()
            worker.join(10)
        assert answers[0].status_code == 200 and answers[0].json()[0]["text"] == "slow one"


# ---- two models on the same text ------------------------------------------------------------------------------
def marked_nodes(tree_html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<g class="node marked" tabindex="0" data-node="(\d+)"', tree_html)]


def test_compare_answers_both_models_and_the_phrases_where_their_labels_differ(model, other_checkpoint, offers_other):
    with TestClient(serve.create_app(Pipeline(model, RightBranchingParser()))) as client:
        answer = post(client, {"texts": TEXTS, "compare": "other"}).json()
        assert answer["a"] == post(client, {"texts": TEXTS}).json()  # each side as the model alone answers
        assert answer["b"] == post(client, {"texts": TEXTS, "model": "other"}).json()
        drawn = post(client, {"texts": TEXTS, "compare": "other"}, params={"render": "html"}).json()
    differ = {(s, i) for s, (a, b) in enumerate(zip(answer["a"], answer["b"]))
              for i, (node_a, node_b) in enumerate(zip(a["nodes"], b["nodes"])) if node_a["label"] != node_b["label"]}
    assert 0 < len(differ) < sum(len(doc["nodes"]) for doc in answer["a"])  # some phrases agree, some do not
    found = answer["disagreements"]
    assert sorted((d["sentence"], d["node"]) for d in found) == sorted(differ)
    for d in found:
        a, b = (answer[side][d["sentence"]]["nodes"][d["node"]] for side in "ab")
        assert (d["text"], d["label_a"], d["label_b"]) == (a["text"], a["label"], b["label"])
        assert d["gap"] == pytest.approx(sum(abs(x - y) for x, y in zip(a["probs"], b["probs"])) / 2, abs=1e-3)
    ranked = compare.disagreements(predict(TEXTS, model, RightBranchingParser()),
                                   predict(TEXTS, load_network(other_checkpoint), RightBranchingParser()))
    assert [(d["sentence"], d["node"]) for d in found] == [(d.sentence, d.node) for d in ranked]  # compare's order

    for side, suffix in (("a", ""), ("b", "b")):  # both trees drawn as the page draws one, the differences ringed
        for s, doc in enumerate(drawn[side]):
            marked = sorted(i for t, i in differ if t == s)
            plain = {key: value for key, value in doc.items() if key not in ("html", "legend")}
            assert plain == answer[side][s] and doc["html"] == render.tree_html(plain, f"{s}{suffix}", marked)
            assert marked_nodes(doc["html"]) == marked and f'id="tip-{s}{suffix}-0"' in doc["html"]


def test_compare_refuses_models_with_other_classes_and_keeps_serving(model, tiny_model, monkeypatch):
    monkeypatch.setitem(bundles.BUNDLES, "three", tiny_model(num_classes=3))
    with TestClient(serve.create_app(Pipeline(model, RightBranchingParser()))) as client:
        response = post(client, {"text": "not bad", "compare": "three"})
        assert response.status_code == 422 and response.json() == {
            "error": "the models predict different numbers of classes (5 and 3): their labels cannot be compared"}
        assert post(client, {"text": "not bad", "model": "three"}).status_code == 200


# ---- the command ---------------------------------------------------------------------------------------------
def test_serve_loads_the_model_and_the_parser_once_then_runs_uvicorn(checkpoint, monkeypatch):
    loads, runs = [], []
    monkeypatch.setattr(predict_module, "load_parser",
                        lambda model="auto", **kwargs: loads.append(model) or RightBranchingParser())
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: runs.append((app, kwargs)))
    assert cli.main(["serve", "--checkpoint", str(checkpoint), "--port", "8123"]) == 0
    [(app, kwargs)] = runs
    assert kwargs == {"host": "127.0.0.1", "port": 8123} and loads == ["auto"]
    with TestClient(app) as client:
        for text in ("not bad", "great", "so bad"):
            assert post(client, {"text": text}).status_code == 200
        assert client.get("/api/health").json()["model"]["name"] == str(checkpoint)
    assert loads == ["auto"]  # not once per request


def test_serve_errors(checkpoint, fake_parser, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: pytest.fail("the server must not start"))
    monkeypatch.setitem(bundles.BUNDLES, "minilm", tmp_path / "nothing")
    assert cli.main(["serve"]) == 1
    assert "sentibert serve: error: the minilm model is not bundled with this installation" in capsys.readouterr().err
    assert cli.main(["serve", "--checkpoint", str(tmp_path)]) == 1
    assert "config.json is missing" in capsys.readouterr().err
    for bad_port in ("-1", "65536", "http"):
        with pytest.raises(SystemExit):
            cli.main(["serve", "--checkpoint", str(checkpoint), "--port", bad_port])
    assert "must be a port number" in capsys.readouterr().err


# ---- the page in a browser -----------------------------------------------------------------------------------
@contextmanager
def serving(app):
    """The real server (uvicorn) in a thread, on a free port of 127.0.0.1: its address."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uvi = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uvi.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvi.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        uvi.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def server(model):
    with serving(serve.create_app(Pipeline(model, RightBranchingParser()))) as url:
        yield url


TRAMPOLINE = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
             "os.execv(sys.argv[3], sys.argv[3:])"


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: it reads commands
    on fd 3 and writes answers and events on fd 4, each a JSON message ending in a NUL byte)."""

    def __init__(self, browser: str, tmp_path):
        import fcntl

        to_child, self.out = os.pipe()
        self.inp, from_child = os.pipe()
        # The child's ends become its fds 3 and 4 through a small exec trampoline (no preexec_fn while uvicorn's
        # thread runs; dash takes no fd over 9); moved to 10 and above first, so that neither is already 3 or 4.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
        os.close(to_child)
        os.close(from_child)
        self.log = tmp_path / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TRAMPOLINE, *map(str, high), browser, "--headless", "--no-sandbox",
                 "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--remote-debugging-pipe", "--window-size=1000,700", f"--user-data-dir={tmp_path / 'profile'}",
                 "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=high)
        for fd in high:
            os.close(fd)
        self.buffer, self.events, self.next_id, self.session = b"", [], 0, None
        [page] = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 16)
            if not chunk:
                raise EOFError(f"chromium exited: {self.log.read_text(errors='replace')[-2000:]}")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.out, data):]
        deadline = time.monotonic() + timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self.next_id:
                assert "error" not in answer, answer["error"]
                return answer["result"]
            self.events.append(answer)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(self._message(deadline))

    def open(self, url: str) -> None:
        """Load the page at url and wait for its load event."""
        self.call("Page.enable")  # page events; enabling twice does no harm
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str, timeout: float = 30):
        """The value of a JS expression (a promise is awaited)."""
        result = self.call("Runtime.evaluate", timeout, expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def centre(self, selector: str) -> tuple[float, float]:
        """Where the element's centre is on screen, scrolled into view."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
                      "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return box[0], box[1]

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left" if kind != "mouseMoved" else "none",
                  clickCount=1 if kind != "mouseMoved" else 0)

    def type(self, text: str) -> None:
        """Type into the focused element: Enter between lines."""
        for n, line in enumerate(text.split("\n")):
            if n:
                for kind in ("keyDown", "keyUp"):
                    self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13,
                              **({"text": "\r"} if kind == "keyDown" else {}))
            if line:
                self.call("Input.insertText", text=line)

    def click(self, selector: str) -> None:
        x, y = self.centre(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.mouse(kind, x, y)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (AssertionError, EOFError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.out)
        os.close(self.inp)


def chromium(tmp_path) -> Chromium:
    from test_browser import BROWSER  # skipped there without Chromium (an error in CI, which installs it)

    if BROWSER is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return Chromium(BROWSER, tmp_path)


SETTLED = """new Promise((resolve) => {
  const check = () => ["done", "error"].includes(document.body.dataset.state)
    ? resolve(document.body.dataset.state) : setTimeout(check, 20);
  check();
})"""


def test_typing_sentences_and_clicking_predict_draws_their_trees(server, model, tmp_path):
    from test_browser import DOM

    texts = ["not bad at all", "the <b>story</b> is awful"]
    expected = [render.to_json(p) for p in predict(texts, model, RightBranchingParser())]
    browser = chromium(tmp_path)
    try:
        browser.open(server)
        browser.click("#q")  # focus the text box, then type: one sentence per line
        browser.type("\n".join(texts))
        assert browser.js('document.getElementById("q").value') == "\n".join(texts)
        browser.click("#form button")
        assert browser.js(SETTLED) == "done", browser.js('document.getElementById("status").textContent')
        dom = DOM(browser.js("document.documentElement.outerHTML"))

        assert [attrs["id"] for attrs, _ in dom.find("section", "sentence")] == ["s0", "s1"]
        assert browser.js('[...document.querySelectorAll("section h2 b")].map((b) => b.textContent)') == [
            doc["nodes"][0]["label_name"] for doc in expected]
        nodes = dom.find("g", "node")  # one per phrase, coloured by its label
        labels = [node["label"] for doc in expected for node in doc["nodes"]]
        assert len(nodes) == sum(len(doc["nodes"]) for doc in expected) == 3 + 3
        assert [int(attrs["data-label"]) for attrs, _ in nodes] == labels
        assert [attrs["fill"] for attrs, _ in dom.find("circle")] == [render.palette(5)[label] for label in labels]
        assert [text for attrs, text in dom.find("text") if attrs.get("class") != "word"] == list(map(str, labels))
        assert [text for _, text in dom.find("text", "word")] == [t for doc in expected for t in doc["tokens"]]
        assert "<b>story</b>" in [text for _, text in dom.find("text", "word")]  # shown as text, not markup
        assert all(attrs.get("hidden") is not None for attrs, _ in dom.find("div", "tip"))

        browser.mouse("mouseMoved", *browser.centre('#s1 .node[data-node="1"] circle'))  # hover: its details show
        shown = browser.js('[...document.querySelectorAll(".tip")].filter((t) => !t.hidden).map((t) => t.id)')
        assert shown == ["tip-1-1"]
        tip = browser.js('document.getElementById("tip-1-1").innerText')
        node = expected[1]["nodes"][1]
        assert tip.startswith(node["text"]) and f"{node['probs'][0]:.2f}" in tip and "Layer 1: attention" in tip

        browser.js('document.getElementById("q").select(); delete document.body.dataset.state')
        browser.type("fine\n" + "good " * 130)  # replaces the selection; the second sentence is too long
        browser.click("#form button")
        assert browser.js(SETTLED) == "error"  # the server's message shows, and the trees stay
        assert "texts:2: 132 wordpieces" in browser.js('document.getElementById("status").textContent')
        assert browser.js('document.querySelectorAll("#results .node").length') == len(nodes)

        browser.open(server + "?q=" + "so%20bad")  # a link that fills the box and submits
        assert browser.js(SETTLED) == "done"
        assert browser.js('[...document.querySelectorAll("#results .word")].map((w) => w.textContent)') == ["so", "bad"]
    finally:
        browser.close()


def test_choosing_a_model_to_compare_with_draws_both_trees_and_rings_the_differences(model, other_checkpoint,
                                                                                     offers_other, tmp_path):
    texts = ["not bad at all", "a dull , lifeless film"]
    a, b = ([render.to_json(p) for p in predict(texts, network, RightBranchingParser())]
            for network in (model, load_network(other_checkpoint)))
    sides = """[...document.querySelectorAll("#s%d .pair > div")].map((side) => [side.querySelector("p").textContent,
      [...side.querySelectorAll(".node")].map((n) => +n.dataset.label),
      [...side.querySelectorAll(".node.marked")].map((n) => +n.dataset.node)])"""  # caption, labels, ringed nodes
    browser = chromium(tmp_path)
    with serving(serve.create_app(Pipeline(model, RightBranchingParser()))) as url:
        try:
            browser.open(url)
            browser.js('document.getElementById("compare").value = "other"')
            browser.click("#q")
            browser.type("\n".join(texts))
            browser.click("#form button")
            assert browser.js(SETTLED) == "done", browser.js('document.getElementById("status").textContent')

            for s, (doc_a, doc_b) in enumerate(zip(a, b)):
                differ = [i for i, (x, y) in enumerate(zip(doc_a["nodes"], doc_b["nodes"])) if x["label"] != y["label"]]
                assert differ, "the fixture's models should disagree somewhere in each sentence"
                assert browser.js(sides % s) == [
                    [f"{doc['nodes'][0]['label_name']} ({name})", [node["label"] for node in doc["nodes"]], differ]
                    for doc, name in ((doc_a, model.name), (doc_b, "other"))]
                note = browser.js(f'document.querySelector("#s{s} p.differ").textContent')
                assert all(f"\u201c{doc_a['nodes'][i]['text']}\u201d" in note for i in differ), note

            browser.mouse("mouseMoved", *browser.centre('#s1 .pair > div:nth-child(2) .node[data-node="1"] circle'))
            shown = browser.js('[...document.querySelectorAll(".tip")].filter((t) => !t.hidden).map((t) => t.id)')
            assert shown == ["tip-1b-1"]  # the second tree's own hover box

            browser.open(url + "?q=great&compare=other")  # a link that compares
            assert browser.js(SETTLED) == "done"
            assert browser.js('[...document.querySelectorAll("#results .pair svg")].length') == 2
        finally:
            browser.close()
