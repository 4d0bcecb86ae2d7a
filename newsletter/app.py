"""The signup service: subscribe (double opt-in), confirm, unsubscribe.

Routes live under the path of NEWSLETTER_URL (/newsletter). GET shows a page,
POST acts: a mail scanner that opens a link changes nothing. A form post gets a
303 to a static page of the site, or a 4xx page in the theme that says what was
wrong; `Accept: application/json` gets JSON (202 / 4xx {"erreur": …}).

The signup answer never depends on whether the address is known: the store is not
consulted, and the mail is handed to the relay by a worker task (outgoing.py), whose outcome it awaits.
"""
from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from blogcore.typography import fix_html, fix_text

from .addresses import InvalidAddress, normalize_address
from .config import Config
from .groupcommit import Confirmations
from .headers import SECURITY_HEADERS, SecurityHeaders, secured
from .lists import FORM_WHOLE_BLOG, Catalogue, UnknownList
from .mailproc import MailProcess
from .outgoing import ADDRESS_REFUSED, DEADLINE as MAIL_DEADLINE, Outgoing
from . import quietlog
from .pages import AddressPages, theme_environment
from .peers import address_limiter
from .ratelimit import Limits, RateLimiter, client_group
from .signing import BadLink, ExpiredLink, Signer
from .welcome import joined
from .store import WHOLE_BLOG, Erasure, open_store

logger = logging.getLogger(__name__)

MAX_BODY = 4096
MAX_FIELDS = 20
HONEYPOT = "site_web"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

MESSAGES = {
    "verifiez": "C’est presque fini : nous venons d’envoyer un e-mail de confirmation à l’adresse indiquée. "
                "Ouvrez-le et confirmez dans les 48 heures. Rien n’est enregistré avant votre confirmation.",
    "confirme": "Inscription confirmée : vous recevrez les prochains billets par e-mail.",
    "desinscrit": "Vous êtes désinscrit : votre adresse a été effacée.",
    "effacement": "Vous êtes désinscrit : votre adresse est retirée de la liste. Un autre programme lisait la base "
                  "à cet instant ; son effacement du disque se termine dès qu’il a fini, en quelques secondes.",
}
HTTP_ERRORS = {
    400: "La requête est mal formée.",
    404: "Cette page n’existe pas.",
    405: "Cette méthode n’est pas acceptée à cette adresse.",
    413: f"Le formulaire envoyé est trop volumineux ({MAX_BODY} octets au plus).",
    415: "Format non accepté : envoyez un formulaire (application/x-www-form-urlencoded, "
         "multipart/form-data) ou du JSON.",
    429: "Trop de demandes depuis votre connexion : patientez une minute avant de réessayer.",
    500: "Une erreur interne est survenue. Réessayez un peu plus tard.",
    503: "Le service est momentanément surchargé. Réessayez dans quelques minutes.",
}
MAIL_NOT_SENT = ("Le mail de confirmation n’a pas pu partir : notre serveur de courrier ne répond pas. "
                 "Rien n’a été enregistré. Réessayez dans quelques minutes.")
ADDRESS_NOT_DELIVERABLE = ("Notre serveur de courrier refuse d’écrire à cette adresse : vérifiez-la, ou indiquez-en "
                           "une autre. Rien n’a été enregistré.")
NOT_STORED = ("Votre confirmation n’a pas pu être enregistrée : réessayez dans une minute avec le même lien "
              "(il reste valable 48 heures).")
NO_LIST_CHOSEN = "Cochez au moins une case : « tout le blog », ou une rubrique."
NOTHING_TO_LEAVE = "Cochez au moins une liste à quitter, ou choisissez « Me désinscrire de tout »."
TOO_MANY_FOR_ADDRESS = ("Plusieurs e-mails de confirmation ont déjà été demandés pour cette adresse "
                        "dans l’heure : vérifiez votre boîte (et les courriers indésirables), "
                        "ou réessayez dans une heure.")


class Refused(Exception):
    """A request refused with a status and a French message for the reader."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.status, self.message, self.headers = status, message, headers


# -- helpers ---------------------------------------------------------------

def header(request: Request, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case, as ASGI gives them). request.headers
    builds a Headers object and lowers every name it compares, and a missing header raises on the way:
    a confirmation reads two (Accept, Content-Length), 1.5 of its 24 µs so."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def wants_json(request: Request) -> bool:
    return "application/json" in (header(request, b"accept") or "")


def client_key(request: Request) -> str:
    """Who a per-client limit counts (see ratelimit.client_group)."""
    return client_group(request.client.host if request.client else "?")


def page_url(request: Request, name: str) -> str:
    """The static page of the flow, e.g. /newsletter/verifiez/ (content/pages/newsletter-*.md)."""
    return f"{request.state.config.newsletter_path}/{name}/"


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    context.setdefault("NEWSLETTER_RUBRIQUES", request.state.catalogue.form_lists())  # the signup form's lists
    html = request.state.templates.get_template(template).render(context)
    return HTMLResponse(fix_html(html), status_code=status)


def refusal(request: Request, status: int, message: str, headers: dict | None = None,
            title: str = "Inscription impossible") -> Response:
    """A French error: JSON, or a page of the site with the form to try again."""
    if wants_json(request):
        response = JSONResponse({"erreur": fix_text(message)}, status_code=status)
    else:
        response = render(request, "service/error.html", status, page_title=title, message=message)
    response.headers.update(headers or {})
    return response


class Redirect(Response):
    """A 303 to a static page of the flow, made once a page, security headers included, and sent as is to
    every reader it answers: a confirmation's answer without building it (headers, encodings) each time."""

    def __init__(self, location: str):
        super().__init__(status_code=303, headers={"location": location})  # RedirectResponse would quote it
        self.raw_headers = secured(self.raw_headers, location)


_REDIRECTS: dict[str, Redirect] = {}


def done(request: Request, name: str, status_json: int = 200) -> Response:
    """Success: 303 to the static page, or JSON."""
    if wants_json(request):
        return JSONResponse({"message": fix_text(MESSAGES[name])}, status_code=status_json)
    location = page_url(request, name)
    if (redirect := _REDIRECTS.get(location)) is None:
        redirect = _REDIRECTS[location] = Redirect(location)
    return redirect


def limit(request: Request, limiter_name: str, key: str, message: str) -> None:
    wait = request.state.limiters[limiter_name].wait(key)
    if wait:
        raise Refused(429, message, {"Retry-After": str(wait)})  # when this limiter will let the next one in


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 beyond MAX_BODY bytes (announced or streamed)."""
    length = header(request, b"content-length")
    if length == "0":  # a confirmation's form, most often: nothing to wait for from the server
        return b""
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise Refused(413, HTTP_ERRORS[413])
    body = bytearray()
    while True:  # the server's messages as they come (Starlette's request.stream(), without its generator)
        message = await request.receive()
        if message["type"] == "http.disconnect":  # gone mid-body: nobody reads the answer, and it is no error of ours
            raise Refused(400, "Le formulaire n’est pas arrivé en entier : renvoyez-le depuis la page.")
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise Refused(413, HTTP_ERRORS[413])
        if not message.get("more_body", False):
            return bytes(body)


async def read_fields(request: Request, body: bytes) -> dict[str, list[str]]:
    """Form fields (urlencoded, multipart) or a JSON object, as {name: [values]}; 415 for anything else."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "application/x-www-form-urlencoded":
            return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                            max_num_fields=MAX_FIELDS)
        if ctype == "multipart/form-data":
            async def once():
                yield body
            form = await MultiPartParser(Headers(raw=request.headers.raw), once(), max_files=0,
                                         max_fields=MAX_FIELDS, max_part_size=MAX_BODY).parse()
            return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form.keys()}
        if ctype == "application/json":
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            # A lone surrogate (\ud800) is valid JSON but no text: it could be neither answered nor mailed.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
            return {k: v if isinstance(v, list) else [v] for k, v in data.items()}
    except (ValueError, RecursionError, MultiPartException):  # UnicodeError is a ValueError; deep nesting recurses
        raise Refused(400, "Le formulaire envoyé est illisible : renvoyez-le depuis la page.") from None
    raise Refused(415, HTTP_ERRORS[415])


# -- endpoints -------------------------------------------------------------

async def subscribe(request: Request) -> Response:
    """POST /inscription: validate, then queue one confirmation mail. Nothing is stored."""
    try:
        limit(request, "signup_per_client", client_key(request), HTTP_ERRORS[429])
        body = await read_body(request)
        fields = await read_fields(request, body)
        if any(str(v).strip() for v in fields.get(HONEYPOT, [])):
            return done(request, "verifiez", 202)  # a bot: the usual answer, and nothing sent
        values = fields.get("email", [])
        if len(values) > 1:
            raise Refused(422, "Le champ « adresse e-mail » doit contenir une seule adresse.")
        try:
            email = normalize_address(values[0] if values else "")
        except InvalidAddress as exc:
            raise Refused(422, exc.message) from None
        lists = [WHOLE_BLOG]  # a form without the choice (an old page, a JSON client): the whole blog
        if "listes" in fields:
            try:
                lists = request.state.catalogue.choose(str(value) for value in fields["listes"])
            except UnknownList as exc:
                raise Refused(422, str(exc)) from None
            if not lists:
                raise Refused(422, NO_LIST_CHOSEN)
        limit(request, "mail_per_address", email.lower(), TOO_MANY_FOR_ADDRESS)
        outcome = request.state.outgoing.submit(email, lists)
        if outcome is None:
            raise Refused(503, HTTP_ERRORS[503], {"Retry-After": "120"})
        # The answer waits for the relay to take the mail (or the worker to give up, at its deadline).
        sent = await outcome
        if sent == ADDRESS_REFUSED:
            raise Refused(422, ADDRESS_NOT_DELIVERABLE)
        if not sent:
            raise Refused(503, MAIL_NOT_SENT, {"Retry-After": "300"})
    except Refused as exc:
        return refusal(request, exc.status, exc.message, exc.headers)
    return done(request, "verifiez", 202)


def read_link(request: Request, kind: str) -> tuple[str, list[str]]:
    """The address in the link's token, and the lists a confirmation link asks for (none for an
    unsubscribe link); Refused with a French page if forged or expired."""
    signer: Signer = request.state.signer
    token = request.path_params["token"]
    try:
        if kind == "confirm":
            return signer.read_confirm(token)
        return signer.read_unsubscribe_token(token), []
    except ExpiredLink:
        raise Refused(410, "Ce lien de confirmation a expiré : il n’est valable que 48 heures. "
                           "Inscrivez-vous à nouveau avec le formulaire ci-dessous, "
                           "vous recevrez un nouveau lien.") from None
    except BadLink:
        raise Refused(400, "Ce lien n’est pas valide : il a peut-être été coupé ou modifié. "
                           "Copiez le lien complet depuis l’e-mail reçu, "
                           "ou inscrivez-vous à nouveau avec le formulaire ci-dessous.") from None


async def confirm(request: Request) -> Response:
    """GET shows the « Confirmer » button; POST stores the address on the lists of the link (and queues a
    welcome mail naming the reader's lists whenever that added one)."""
    try:
        limit(request, "links_per_client", client_key(request), HTTP_ERRORS[429])
        email, lists = read_link(request, "confirm")
        if request.method == "POST":
            await read_body(request)
            if not await request.state.confirmations.confirm(email, lists):  # stored with those confirmed meanwhile
                raise Refused(503, NOT_STORED, {"Retry-After": "60"})
            return done(request, "confirme")
    except Refused as exc:
        return refusal(request, exc.status, exc.message, exc.headers, title="Lien de confirmation")
    if wants_json(request):
        return JSONResponse({"message": "Confirmez votre inscription par une requête POST sur cette adresse."})
    catalogue: Catalogue = request.state.catalogue
    return HTMLResponse(request.state.address_pages.render(
        "service/confirm.html", email, page_title="Confirmer votre inscription",
        lists=tuple(catalogue.name(key) for key in lists), NEWSLETTER_RUBRIQUES=tuple(catalogue.form_lists())))


async def unsubscribe(request: Request) -> Response:
    """GET shows « Me désinscrire de tout » and, for a reader on several lists, a choice of lists to leave.
    POST erases the address at once (RFC 8058 one-click too), or with `quitter` leaves only those lists."""
    store = request.state.store
    try:
        limit(request, "links_per_client", client_key(request), HTTP_ERRORS[429])
        email, _ = read_link(request, "unsubscribe")
        if request.method == "POST":
            body = await read_body(request)
            try:
                fields = await read_fields(request, body)
            except Refused:
                fields = {}  # any POST unsubscribes; only the answer differs
            if "quitter" in fields and "One-Click" not in fields.get("List-Unsubscribe", []):
                return await leave_some(request, email, fields["quitter"])
            erasure = await run_in_threadpool(store.remove, email)
            answer = "effacement" if erasure is Erasure.PENDING else "desinscrit"
            if "One-Click" in fields.get("List-Unsubscribe", []):
                return PlainTextResponse(fix_text(MESSAGES[answer]) + "\n")
            return done(request, answer)
    except Refused as exc:
        return refusal(request, exc.status, exc.message, exc.headers, title="Lien de désinscription")
    if wants_json(request):
        return JSONResponse({"message": "Confirmez la désinscription par une requête POST sur cette adresse."})
    lists = await run_in_threadpool(store.lists_of, email)
    return unsubscribe_page(request, email, lists)


def unsubscribe_page(request: Request, email: str, lists: list[str], status: int = 200, message: str = "",
                     error: str = "") -> Response:
    catalogue: Catalogue = request.state.catalogue
    choices = tuple((key or FORM_WHOLE_BLOG, catalogue.name(key)) for key in lists)
    return HTMLResponse(request.state.address_pages.render(
        "service/unsubscribe.html", email, page_title="Se désinscrire", lists=choices, message=message,
        error=error, NEWSLETTER_RUBRIQUES=tuple(catalogue.form_lists())), status_code=status)


async def leave_some(request: Request, email: str, values: list) -> Response:
    """The lists ticked on the unsubscribe page: off those only (off the last one, the address is erased)."""
    keys = sorted({WHOLE_BLOG if value == FORM_WHOLE_BLOG else str(value) for value in values if str(value).strip()})
    store = request.state.store
    if not keys:
        lists = await run_in_threadpool(store.lists_of, email)
        if wants_json(request):
            return JSONResponse({"erreur": fix_text(NOTHING_TO_LEAVE)}, status_code=422)
        return unsubscribe_page(request, email, lists, 422, error=NOTHING_TO_LEAVE)

    def leave() -> tuple[Erasure, list[str]]:
        return store.leave(email, keys), store.lists_of(email)

    erasure, still = await run_in_threadpool(leave)
    if not still:
        return done(request, "effacement" if erasure is Erasure.PENDING else "desinscrit")
    catalogue: Catalogue = request.state.catalogue
    message = (f"C’est fait : vous ne recevrez plus les billets de {joined([catalogue.name(k) for k in keys])}. "
               f"Vous restez inscrit à {joined([catalogue.name(k) for k in still])}.")
    if erasure is Erasure.PENDING:
        message += " Un autre programme lisait la base : l’effacement du disque se termine dès qu’il a fini."
    if wants_json(request):
        return JSONResponse({"message": fix_text(message)})
    return unsubscribe_page(request, email, still, message=message)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """404, 405 and friends, in French, JSON or HTML as asked."""
    message = HTTP_ERRORS.get(exc.status_code, exc.detail)
    return refusal(request, exc.status_code, message, dict(exc.headers or {}) or None, title="Erreur")


async def server_error(request: Request, exc: Exception) -> Response:
    # Sent by the outermost middleware, past SecurityHeaders: add them here.
    logger.error("unhandled error: %s", type(exc).__name__)
    if wants_json(request):
        return JSONResponse({"erreur": HTTP_ERRORS[500]}, status_code=500, headers=SECURITY_HEADERS)
    return PlainTextResponse(HTTP_ERRORS[500], status_code=500, headers=SECURITY_HEADERS)


PREVIEW_CSP = "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"


async def mail_preview(request: Request) -> Response:
    """Dev server only: a post's newsletter as `make preview` writes it (?texte for the text part)."""
    from .mail_message import PostError
    from .preview import render_preview

    try:
        html, text = await run_in_threadpool(render_preview, request.state.config, request.path_params["slug"])
    except PostError as error:  # the author's message, as `make preview` prints it
        return PlainTextResponse(str(error), status_code=404)
    # The mail's own CSS is inline by design (css_inline): allow it on this page only.
    headers = {"Content-Security-Policy": PREVIEW_CSP, "X-Robots-Tag": "noindex"}
    if "texte" in request.query_params:
        return PlainTextResponse(text, headers=headers)
    return HTMLResponse(html, headers=headers)


# -- the app -----------------------------------------------------------------

class SiteFiles(StaticFiles):
    """The built site (dev server). As StaticFiles, except that a JSON Feed (plugins/feeds names them
    feed.json) goes out as application/feed+json, its type in JSON Feed 1.1, which mimetypes does not know."""

    def file_response(self, full_path, stat_result, scope, status_code=200):
        response = super().file_response(full_path, stat_result, scope, status_code)
        if Path(full_path).name == "feed.json" and "content-type" in response.headers:
            response.headers["content-type"] = "application/feed+json"
        return response


class ServiceRequest(Request):
    """Starlette's Request, whose `state` (the lifespan's objects) is read as plain attributes: Starlette's
    State finds each through __getattr__ and a dict, and a confirmation reads four (2.4 of its 24 µs)."""

    def __init__(self, scope, receive):
        super().__init__(scope, receive)
        self._shared = SimpleNamespace(**scope.get("state", {}))

    @property
    def state(self) -> SimpleNamespace:
        return self._shared


class Front:
    """The service's endpoints called straight from the request's method and path; everything else (other
    paths and methods, the lifespan, the dev server's site) through Starlette. Starlette's router and
    middleware chain cost 6–8 µs of the 27–40 µs of Python an endpoint takes (measured alone), and a
    request that awaits its mail resumes through all of it."""

    def __init__(self, app: Starlette, prefix: str):
        self.app = app
        self.exact = {("POST", f"{prefix}/inscription"): subscribe}
        self.with_token = {(method, f"{prefix}/{name}"): endpoint for method in ("GET", "POST")
                           for name, endpoint in (("confirmer", confirm), ("desinscription", unsubscribe))}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            endpoint = self.exact.get((method, path))
            if endpoint is None:
                head, _, token = path.rpartition("/")
                if token and (endpoint := self.with_token.get((method, head))) is not None:
                    scope["path_params"] = {"token": token}
            if endpoint is not None:
                return await self.serve(endpoint, scope, receive, send)
        await self.app(scope, receive, send)

    async def serve(self, endpoint, scope, receive, send) -> None:
        """As Starlette would: its error handlers, then the security headers."""
        request = ServiceRequest(scope, receive)
        try:
            response = await endpoint(request)
        except HTTPException as exc:
            response = await http_error(request, exc)
        except Exception as exc:  # as Starlette's ServerErrorMiddleware: the French 500, then the server logs it
            await (await server_error(request, exc))(scope, receive, send)
            raise
        if not isinstance(response, Redirect):  # secured once made
            response.raw_headers = secured(response.raw_headers, scope["path"])
        await response(scope, receive, send)


def create_app(config: Config, *, limits: Limits = Limits(), static_dir: str | Path | None = None,
               mail_deadline: float = MAIL_DEADLINE, mail_process: bool = False, instance: str | None = None) -> Front:
    """The service; with `static_dir`, also the built site at / (the dev server). mail_deadline: seconds a
    signup waits for the relay to take its confirmation mail, retries included. mail_process: mails built
    and handed off by a child process (mailproc.py), as `python -m newsletter.server` runs it; else by
    tasks of this process's loop. instance: this one's host:port among NEWSLETTER_INSTANCES (peers.py)."""
    prefix = config.newsletter_path
    routes = [
        Route(f"{prefix}/inscription", subscribe, methods=["POST"]),
        Route(f"{prefix}/confirmer/{{token}}", confirm, methods=["GET", "POST"]),
        Route(f"{prefix}/desinscription/{{token}}", unsubscribe, methods=["GET", "POST"]),
    ]
    if static_dir is not None:
        routes.append(Route(f"{prefix}/apercu/{{slug}}", mail_preview, methods=["GET"]))
        routes.append(Mount("/", app=SiteFiles(directory=static_dir, html=True)))

    @asynccontextmanager
    async def lifespan(app):
        quietlog.install()  # whatever server runs the app, a flood of one message cannot fill the disk
        signer = Signer(config.secrets)
        store = open_store(config.db)
        catalogue = Catalogue(config)
        if mail_process:  # the child stores confirmations too, and sends their welcome mails
            outgoing = confirmations = MailProcess(config, deadline=mail_deadline)
        else:
            outgoing = Outgoing(config, signer, deadline=mail_deadline)
            confirmations = Confirmations(store, outgoing, catalogue)
        await outgoing.start()
        by_address, peers = await address_limiter(config, limits.mail_per_address, instance)
        templates = theme_environment(config)
        try:
            yield {
                "config": config,
                "signer": signer,
                "store": store,
                "outgoing": outgoing,
                "catalogue": catalogue,
                "templates": templates,
                "address_pages": AddressPages(templates),
                "confirmations": confirmations,
                "limiters": {"signup_per_client": RateLimiter(limits.signup_per_client),
                             "mail_per_address": by_address,
                             "links_per_client": RateLimiter(limits.links_per_client)},
            }
        finally:
            if peers is not None:
                peers.close()
            if confirmations is not outgoing:
                await confirmations.close()  # their welcome mails queued before the mails stop
            await outgoing.stop()
            store.close()

    return Front(Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    ), prefix)
