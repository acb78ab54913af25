"""The web app of `sentibert serve`: a local page to type sentences and see their trees, and the JSON API behind it.

    sentibert serve --checkpoint runs/sst_phrase/DATE/best_model     # then open http://127.0.0.1:8000/
    curl --json '{"texts": ["Not bad at all.", "A dull, lifeless film."]}' http://127.0.0.1:8000/api/predict

The model and the parser load once, at start-up; the server listens on 127.0.0.1 unless --host says otherwise.

  GET  /             the page: a text box (one sentence per line) and a button; each sentence's tree is drawn as
                     `sentibert predict --format html` draws it (`sentibert.evaluation.render`'s SVG), and hovering over a
                     node shows its phrase, probabilities and attention. Self-contained: inline CSS and JS, nothing
                     fetched but /api/predict. `/?q=TEXT` fills the box with TEXT and submits it.
  POST /api/predict  body {"texts": ["...", ...]} or {"text": "..."}, sent as Content-Type: application/json;
                     answers what `sentibert predict --format json` prints for the same texts: a list of documents,
                     one per text, schema in `sentibert.evaluation.render`. With ?render=html each document also has "html":
                     its SVG tree and hover boxes, `sentibert.evaluation.render`'s markup (what the page shows).
  GET  /api/health   {"status": "ok", "model": {...}, "parser": NAME, "limits": {...}}

Errors are JSON, {"error": "..."}: 400 a body that is not {"texts": [strings]} or {"text": string} (not JSON,
wrong keys or types), 413 a body over `Limits.body` bytes, 415 a body not sent as application/json, 422 texts the
model cannot take (none, empty, more than `Limits.texts`, over `Limits.chars` characters, over the encoder's
wordpiece limit, or refused by the parser), 404 / 405 other paths and methods, 500 a bug (logged, with its
traceback). A text is named as in `sentibert predict`: texts:N, counting from 1. No request stops the server.
Requiring application/json also keeps other web sites out: a browser sends that cross-origin only after a CORS
preflight, which this server does not grant.

Inference runs in a worker thread, one request at a time (the model is shared), so the event loop keeps serving
the page and health checks meanwhile.
"""
from __future__ import annotations

import html
import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from sentibert.evaluation import render
from sentibert.inference.predict import PRECISION, PredictError, check_device, check_texts, load_model, predict
from sentibert.parsing.parse import ParserError, load_parser

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


def load(checkpoint: str | Path | None = None, parser: str = "auto", device: str = "cpu", use_cache: bool = True,
         precision: str = PRECISION):
    """The model (on `device`) and the parser, both ready: the parser's pipeline loads now, not on a first request."""
    model = load_model(checkpoint).to(check_device(device))  # None: the bundled model
    loaded = load_parser(parser, use_cache=use_cache, precision=precision)
    getattr(loaded, "pipeline", None)  # a cached property: Stanza and the parser model load here
    return model, loaded


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


def parse_body(body: bytes, limits: Limits) -> tuple[list[str], str]:
    """The texts of a request body, and their name in error messages; RequestError if they cannot be used."""
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
    if set(data) not in ({"text"}, {"texts"}):
        keys = ", ".join(json.dumps(key) for key in data) or "none"
        raise RequestError(400, f'expected one key, "texts" or "text", not {keys}: {SHAPE}')
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
    return texts, source


def tree_html(doc: dict, s: int) -> str:
    """Sentence s's tree and hover boxes, as `render.to_html` draws them (its ids are unique per s)."""
    tips = "".join(render._tip(doc, s, i) for i in range(len(doc["nodes"])))
    return f'<div class="scroll">{render._svg(doc, s)}</div>{tips}'


# ---- the page ------------------------------------------------------------------------------------------------
PAGE_CSS = """
form { max-width: 760px; }
form textarea { display: block; width: 100%; box-sizing: border-box; font: inherit; padding: 6px; }
form button { margin-top: 6px; font: inherit; padding: 3px 16px; }
#status { min-height: 1.4em; } #status.error { color: #b00020; }
"""

# render's hover script, run again over each new set of trees; body[data-state] says where the page is:
# busy (a request is out), done (trees shown) or error (#status says why).
PAGE_JS = """
const form = document.getElementById("form"), box = document.getElementById("q");
const button = form.querySelector("button"), status = document.getElementById("status");
const results = document.getElementById("results");
function wire() {%(hover)s}
function say(message, error) { status.textContent = message; status.className = error ? "error" : ""; }
function section(doc, s) {
  const el = document.createElement("section"), title = document.createElement("h2"), b = document.createElement("b");
  el.className = "sentence"; el.id = "s" + s;
  b.textContent = doc.nodes[0].label_name;
  title.append(`${s + 1}. ${doc.text} \\u2192 `, b);
  el.append(title);
  el.insertAdjacentHTML("beforeend", doc.html);  // the server's markup: every text in it is escaped
  return el;
}
async function submit(event) {
  if (event) event.preventDefault();
  const texts = box.value.split("\\n").filter((line) => line.trim());
  if (!texts.length) { say("Type a sentence first.", true); return; }
  document.body.dataset.state = "busy"; button.disabled = true; say("Predicting\\u2026");
  try {
    const response = await fetch("api/predict?render=html", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({texts})});
    const data = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
    if (!response.ok) throw new Error(data.error);
    results.replaceChildren(...data.map(section));
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
const q = new URLSearchParams(location.search).get("q");
if (q) { box.value = q; submit(); }
"""

# Nothing but this page and /api/predict: no other server, no plugin, no frame (the hover boxes set inline styles).
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
               "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def page(limits: Limits) -> str:
    e = html.escape
    title = "SentiBERT: phrase sentiment"
    legend = "".join(f'<li><span style="background:{c}"></span>{k} {e(name)}</li>'
                     for k, (name, c) in enumerate(zip(render.LABEL_NAMES, render.COLOURS)))
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'<link rel="icon" href="data:,">\n<style>{render._CSS}{PAGE_CSS}</style>\n</head>\n<body>\n'
            f'<h1>{title}</h1>\n<form id="form">\n<label for="q">One sentence per line (at most {limits.texts}):'
            f'</label>\n<textarea id="q" name="q" rows="4" autofocus placeholder="Not bad at all.">'
            f'</textarea>\n<button type="submit">Predict</button>\n</form>\n<p id="status" role="status"></p>\n'
            f'<ul class="legend">{legend}</ul>\n<p>Each circle is a phrase, coloured by its predicted sentiment; '
            f'hover over it (or tab to it) for the phrase, its probabilities and its top attention weights.</p>\n'
            f'<div id="results"></div>\n<script>{PAGE_JS % {"hover": render._JS}}</script>\n</body>\n</html>\n')


# ---- the app -------------------------------------------------------------------------------------------------
def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(model, parser, checkpoint: str | Path | None = None, limits: Limits = Limits(),
               precision: str = PRECISION) -> Starlette:
    """The app around a loaded model and parser (`load`); checkpoint only names the model in /api/health;
    precision is the model's (the parser's is set by `load`)."""
    # Over 60 lines on purpose: the route handlers are closures over the model, the parser and one lock, and read
    # best together, one after the other, as the routes table at the end lists them.
    if MISSING:
        raise ModuleNotFoundError(f"sentibert serve needs the serve extra: pip install 'sentibert[serve]' "
                                  f"({MISSING} is not installed)", name=MISSING)
    lock = threading.Lock()  # one inference at a time: the model is shared
    health = {
        "status": "ok",
        "model": {"class": type(model).__name__, "encoder": model.hparams.get("encoder"),
                  "checkpoint": None if checkpoint is None else str(checkpoint),
                  "max_wordpieces": model.tokenizer.model_max_length,
                  "device": str(next(model.parameters()).device)},
        "parser": getattr(getattr(parser, "model", None), "name", type(parser).__name__),
        "limits": asdict(limits),
    }
    page_html = page(limits)

    def infer(texts: list[str], source: str, with_html: bool) -> list[dict]:
        try:
            with lock:
                predictions = predict(texts, model, parser, source=source, precision=precision)
            docs = [render.to_json(p) for p in predictions]  # ValueError: a phrase the encoder did not read
        except (PredictError, ParserError, ValueError) as err:
            raise RequestError(422, str(err)) from None
        if with_html:
            for s, doc in enumerate(docs):
                doc["html"] = tree_html(doc, s)
        return docs

    async def api_predict(request: Request) -> Response:
        fmt = request.query_params.get("render")
        if fmt not in (None, "html"):
            raise RequestError(400, f"render={fmt}: the only rendering is render=html")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise RequestError(415, f"the body must be sent as JSON, with Content-Type: application/json: {SHAPE}")
        texts, source = parse_body(await read_body(request, limits.body), limits)
        docs = await run_in_threadpool(infer, texts, source, fmt == "html")
        return JSONResponse(docs)

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
