"""The web app of `sentibert serve`: a local page to type sentences and see their trees, and the JSON API behind it.

    sentibert serve --model mpnet                                   # then open http://127.0.0.1:8000/
    curl --json '{"texts": ["Not bad at all.", "A dull, lifeless film."]}' http://127.0.0.1:8000/api/predict

The model given (--model, default minilm) and the parser load once, at start-up; the server listens on 127.0.0.1
unless --host says otherwise. A request may ask for another of the models the server offers, by name: the bundled
models this installation has (`sentibert.bundles`) and the one given at start-up; each loads on first use, on the
same device, and stays loaded.

  GET  /             the page: a text box (one sentence per line), a choice of model, optionally a second model to
                     compare it with, and a button; each sentence's tree is drawn as `sentibert predict --format
                     html` draws it (`sentibert.evaluation.render`'s SVG), and hovering over a node shows its phrase,
                     probabilities and attention. Compared, each sentence shows both trees side by side, the phrases
                     whose labels differ ringed in both and listed above them. Self-contained: inline CSS and JS,
                     nothing fetched but /api/predict. `/?q=TEXT` fills the box with TEXT and submits it
                     (`&model=NAME`, `&compare=NAME` choose the models).
  POST /api/predict  body {"texts": ["...", ...]} or {"text": "..."}, and optionally "model": NAME, sent as
                     Content-Type: application/json; answers what `sentibert predict --format json` prints for the
                     same texts: a list of documents, one per text, schema in `sentibert.evaluation.render` ("model"
                     names the model that answered, "label_names" its classes). With ?render=html each document also
                     has "html", its SVG tree and hover boxes, and "legend", its classes' colours
                     (`sentibert.evaluation.render`'s markup: what the page shows).
                     With "compare": NAME as well, both models run on the same trees and the answer is an object:
                     {"a": [documents of "model"], "b": [documents of "compare"], "disagreements": [{"sentence": S,
                     "node": N, "text": PHRASE, "label_a": K, "label_b": K, "gap": G}, ...]}: the phrase nodes
                     (nodes[N] of sentence S, counting from 0) whose labels differ, ranked as `sentibert compare`
                     ranks them (`sentibert.evaluation.compare`: roots first, then by the probability gap, the total
                     variation distance); with ?render=html their nodes are ringed (class "marked") in both trees.
  GET  /api/health   {"status": "ok", "model": {...}, "models": [NAME, ...], "parser": NAME, "limits": {...}}

Errors are JSON, {"error": "..."}: 400 a body that is not {"texts": [strings]} or {"text": string} (not JSON, wrong
keys or types), 413 a body over `Limits.body` bytes, 415 a body not sent as application/json, 422 texts the model
cannot take (none, empty, more than `Limits.texts`, over `Limits.chars` characters, over the encoder's wordpiece
limit, with a phrase it reads no wordpieces in, or refused by the parser), a model the server does not offer or
cannot load, and two models to compare with different numbers of classes; 404 / 405 other paths and methods, 500 a
bug (logged, with its traceback). A text is named as in `sentibert predict`: texts:N, counting from 1. No request
stops the server. Requiring application/json also keeps other web sites out: a browser sends that cross-origin only
after a CORS preflight, which this server does not grant.

Inference runs in a worker thread, one request at a time (the model is shared), so the event loop keeps serving
the page and health checks meanwhile.
"""
from __future__ import annotations

import html
import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

from sentibert.bundles import installed_bundles
from sentibert.evaluation import compare, render
from sentibert.inference.predict import Pipeline, PredictError, check_texts, load_network
from sentibert.parsing.parse import ParserError

if TYPE_CHECKING:
    from sentibert.models.model import TreePrediction

try:  # the [serve] extra
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route
except ModuleNotFoundError as err:
    MISSING = err.name
else:
    MISSING = None

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may hold; the encoder's wordpiece limit is checked too, after parsing."""
    body: int = 64 * 1024  # bytes
    texts: int = 64  # sentences
    chars: int = 1000  # characters per sentence: long ones are refused before the parser spends time on them


# ---- requests ------------------------------------------------------------------------------------------------
class RequestError(Exception):
    """A request the server refuses: its HTTP status and what to do about it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}
SHAPE = 'send {"texts": ["a sentence", ...]} or {"text": "a sentence"}'


def json_type(value) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be over `limit` bytes: it is never read further."""
    too_big = RequestError(413, f"the request body is over {limit} bytes: send fewer or shorter texts per request")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Query:
    """What a request asks: its texts, their name in error messages (texts or text), the model to answer (one of
    the server's models, or None: the one given at start-up) and the one to compare it with (None: no comparison)."""
    texts: list[str]
    source: str
    model: str | None = None
    compare: str | None = None


def parse_body(body: bytes, limits: Limits, models: Sequence[str] = ()) -> Query:
    """What a request body asks (`Query`); RequestError if it cannot be used. Named models must be in `models`."""
    if not body.strip():
        raise RequestError(400, f"the request body is empty: {SHAPE}")
    try:
        data = json.loads(body)
    except RecursionError:
        raise RequestError(400, "the request body is not JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise RequestError(400, f"the request body is not JSON ({err}): {SHAPE}") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"the request body is {json_type(data)}, not an object: {SHAPE}")
    named = {key: data.pop(key, None) for key in ("model", "compare")}
    for key, model in named.items():
        if model is not None and not isinstance(model, str):
            raise RequestError(400, f'"{key}" is {json_type(model)}, not a string: {SHAPE}')
        if model is not None and model not in models:
            raise RequestError(422, f'"{key}": model {model!r} is not one this server offers: '
                                    f"choose {', '.join(models)}")
    if set(data) not in ({"text"}, {"texts"}):
        keys = ", ".join(json.dumps(key) for key in data) or "none"
        raise RequestError(400, f'expected one key, "texts" or "text" (and "model", "compare"), not {keys}: {SHAPE}')
    if "text" in data:
        source, texts = "text", [data["text"]]
        if not isinstance(data["text"], str):
            raise RequestError(400, f'"text" is {json_type(data["text"])}, not a string: {SHAPE}')
    else:
        source, texts = "texts", data["texts"]
        if not isinstance(texts, list):
            raise RequestError(400, f'"texts" is {json_type(texts)}, not an array of strings: {SHAPE}')
        for n, text in enumerate(texts, start=1):
            if not isinstance(text, str):
                raise RequestError(400, f"{source}:{n} is {json_type(text)}, not a string: {SHAPE}")
    if len(texts) > limits.texts:
        raise RequestError(422, f"{len(texts)} texts, more than {limits.texts} per request: send them in several "
                                "requests")
    try:
        check_texts(texts, source)  # none, or an empty one
    except PredictError as err:
        raise RequestError(422, str(err)) from None
    for n, text in enumerate(texts, start=1):
        if len(text) > limits.chars:
            raise RequestError(422, f"{source}:{n}: {len(text)} characters, more than the limit of {limits.chars}; "
                                    "split it into shorter sentences")
    return Query(texts, source, **named)


# ---- the page ------------------------------------------------------------------------------------------------
PAGE_CSS = """
form { max-width: 760px; }
form textarea { display: block; width: 100%; box-sizing: border-box; font: inherit; padding: 6px; }
form button, form select { margin-top: 6px; font: inherit; padding: 3px 16px; }
h2 .model, .pair .model { color: #666; font-size: 13px; }
#status { min-height: 1.4em; } #status.error { color: #b00020; }
"""

# render's hover script, run again over each new set of trees; body[data-state] says where the page is:
# busy (a request is out), done (trees shown) or error (#status says why). With a model to compare with, each
# sentence shows both trees side by side (the server rings the phrases that differ) and lists those phrases.
PAGE_JS = """
const form = document.getElementById("form"), box = document.getElementById("q");
const button = form.querySelector("button"), status = document.getElementById("status");
const results = document.getElementById("results"), model = document.getElementById("model");
const other = document.getElementById("compare"), legend = document.getElementById("legend");
function wire() {%(hover)s}
function say(message, error) { status.textContent = message; status.className = error ? "error" : ""; }
function element(tag, className, ...children) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  el.append(...children);
  return el;
}
function answer(doc) {  // the sentence's label, and the model that answered
  return [element("b", "", doc.nodes[0].label_name), element("span", "model", ` (${doc.model})`)];
}
function section(doc, s) {
  const el = element("section", "sentence", element("h2", "", `${s + 1}. ${doc.text} \\u2192 `, ...answer(doc)));
  el.id = "s" + s;
  el.insertAdjacentHTML("beforeend", doc.html);  // the server's markup: every text in it is escaped
  return el;
}
function pair(a, b, differ, s) {
  const names = (d) => `\\u201c${d.text}\\u201d ${a.label_names[d.label_a]} / ${b.label_names[d.label_b]}`;
  const note = differ.length ? `Where the labels differ (${a.model} / ${b.model}): ${differ.map(names).join("; ")}.`
    : "The two models label every phrase alike.";
  const sides = [a, b].map((doc) => {
    const side = element("div", "", element("p", "", ...answer(doc)));
    side.insertAdjacentHTML("beforeend", doc.html);
    return side;
  });
  const el = element("section", "sentence", element("h2", "", `${s + 1}. ${a.text}`), element("p", "differ", note),
                     element("div", "pair", ...sides));
  el.id = "s" + s;
  return el;
}
async function submit(event) {
  if (event) event.preventDefault();
  const texts = box.value.split("\\n").filter((line) => line.trim());
  if (!texts.length) { say("Type a sentence first.", true); return; }
  document.body.dataset.state = "busy"; button.disabled = true; say("Predicting\\u2026");
  try {
    const response = await fetch("api/predict?render=html", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({texts, model: model.value, compare: other.value || undefined})});
    const data = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
    if (!response.ok) throw new Error(data.error);
    const docs = Array.isArray(data) ? data : data.a;  // data.b: the compared model's, in the same order
    results.replaceChildren(...(data === docs ? docs.map(section)
      : docs.map((doc, s) => pair(doc, data.b[s], data.disagreements.filter((d) => d.sentence === s), s))));
    legend.innerHTML = docs[0].legend;  // the answering model's classes
    wire();
    say("");
    document.body.dataset.state = "done";
  } catch (err) {
    say(err.message, true);
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}
form.addEventListener("submit", submit);
box.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
const params = new URLSearchParams(location.search);
for (const select of [model, other]) if (params.has(select.id)) select.value = params.get(select.id);
const q = params.get("q");
if (q) { box.value = q; submit(); }
"""

# Nothing but this page and /api/predict: no other server, no plugin, no frame (the hover boxes set inline styles).
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
               "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def page(limits: Limits, models: Sequence[str], label_names: Sequence[str]) -> str:
    """The page; `models` are the choices, the first selected (and none to compare with), and `label_names` its
    classes (the legend)."""
    e = html.escape
    title = "SentiBERT: phrase sentiment"
    options = "".join(f'<option{" selected" if n == 0 else ""}>{e(name)}</option>' for n, name in enumerate(models))
    others = '<option value="" selected>none</option>' + "".join(f"<option>{e(name)}</option>" for name in models)
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'<link rel="icon" href="data:,">\n<style>{render._CSS}{PAGE_CSS}</style>\n</head>\n<body>\n'
            f'<h1>{title}</h1>\n<form id="form">\n<label for="q">One sentence per line (at most {limits.texts}):'
            f'</label>\n<textarea id="q" name="q" rows="4" autofocus placeholder="Not bad at all.">'
            f'</textarea>\n<label for="model">Model</label> <select id="model">{options}</select>\n'
            f'<label for="compare">compared with</label> <select id="compare">{others}</select>\n'
            f'<button type="submit">Predict</button>\n</form>\n<p id="status" role="status"></p>\n'
            f'<div id="legend">{render.legend(label_names)}</div>\n<p>Each circle is a phrase, coloured by its '
            f'predicted class; hover over it (or tab to it) for the phrase, its probabilities and its top attention '
            f'weights. A model to compare with draws its tree beside, with the phrases whose labels differ ringed.'
            f'</p>\n<div id="results"></div>\n<script>{PAGE_JS % {"hover": render._JS}}</script>\n</body>\n</html>\n')


# ---- the app -------------------------------------------------------------------------------------------------
def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(pipeline: Pipeline, limits: Limits = Limits()) -> Starlette:
    """The app around a loaded model and its parser (`sentibert.inference.predict.load_model`). Requests may name
    another model: any bundle this installation has, loaded on first use beside it (same parser, device, precision)."""
    # Over 60 lines on purpose: the route handlers are closures over the models, the parser and one lock, and read
    # best together, one after the other, as the routes table at the end lists them.
    if MISSING:
        raise ModuleNotFoundError(f"sentibert serve needs the serve extra: pip install 'sentibert[serve]' "
                                  f"({MISSING} is not installed)", name=MISSING)
    lock = threading.Lock()  # one inference at a time: the models are shared
    model, device = pipeline.model, next(pipeline.model.parameters()).device
    start = pipeline.name or type(model).__name__
    loaded = {start: model}  # name -> model, loaded on first use
    models = list(dict.fromkeys([start, *installed_bundles()]))  # the one given at start-up first
    health = {
        "status": "ok",
        "model": {"name": start, "class": type(model).__name__, "encoder": model.hparams.get("encoder"),
                  "label_names": list(model.label_names), "max_wordpieces": model.tokenizer.model_max_length,
                  "device": str(device)},
        "models": models,
        "parser": getattr(getattr(pipeline.parser, "model", None), "name", type(pipeline.parser).__name__),
        "limits": asdict(limits),
    }
    page_html = page(limits, models, model.label_names)

    def answer(query: Query, name: str) -> list[TreePrediction]:
        """The named model's predictions (called under the lock)."""
        if name not in loaded:
            loaded[name] = load_network(name).to(device)  # CheckpointError: one line, e.g. mpnet's encoder
        return Pipeline(loaded[name], pipeline.parser, pipeline.precision).predict(query.texts, source=query.source)

    def infer(query: Query, with_html: bool) -> list[dict] | dict:
        try:
            with lock:
                a = answer(query, query.model or start)
                b = answer(query, query.compare) if query.compare else None
            found = compare.disagreements(a, b) if b else []  # CompareError: other numbers of classes
        except (PredictError, ParserError, ValueError) as err:
            raise RequestError(422, str(err)) from None
        sides = [[render.to_json(p) for p in predictions] for predictions in ([a, b] if b else [a])]
        if with_html:  # the phrases that differ ringed; the suffix keeps the second trees' ids apart on one page
            marked = {s: {d.node for d in ds} for s, ds in compare.by_sentence(found).items()}
            for docs, suffix in zip(sides, ("", "b")):
                for s, doc in enumerate(docs):
                    doc["html"] = render.tree_html(doc, f"{s}{suffix}", marked.get(s, ()))
                    doc["legend"] = render.legend(doc["label_names"])
        if b is None:
            return sides[0]
        differ = [{"sentence": d.sentence, "node": d.node, "text": sides[0][d.sentence]["nodes"][d.node]["text"],
                   "label_a": d.label_a, "label_b": d.label_b, "gap": round(d.gap, 4)} for d in found]
        return {"a": sides[0], "b": sides[1], "disagreements": differ}

    async def api_predict(request: Request) -> Response:
        fmt = request.query_params.get("render")
        if fmt not in (None, "html"):
            raise RequestError(400, f"render={fmt}: the only rendering is render=html")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise RequestError(415, f"the body must be sent as JSON, with Content-Type: application/json: {SHAPE}")
        query = parse_body(await read_body(request, limits.body), limits, models)
        return JSONResponse(await run_in_threadpool(infer, query, fmt == "html"))

    async def api_health(request: Request) -> Response:
        return JSONResponse(health)

    async def index(request: Request) -> Response:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": PAGE_POLICY})

    def guarded(endpoint):
        """Any failure as a JSON error: a refusal (4xx) or a bug (500, logged with its traceback)."""
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except RequestError as err:
                log.info("%s %s: %d %s", request.method, request.url.path, err.status, err.message)
                return error(err.status, err.message)
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                return error(500, "internal server error: the server's log has the details")
        return run

    async def http_error(request: Request, exc: HTTPException) -> Response:  # 404, 405
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    return Starlette(routes=[Route("/", guarded(index), methods=["GET"]),
                             Route("/api/predict", guarded(api_predict), methods=["POST"]),
                             Route("/api/health", guarded(api_health), methods=["GET"])],
                     exception_handlers={HTTPException: http_error})
