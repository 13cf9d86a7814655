"""The monitor's guard: the token, its cookie, CSRF, the Host check and security headers."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partita.web._monitor import MonitorState

CSRF_HEADER = "x-partita-csrf"


class Guard:
    """ASGI middleware: nothing passes without the token; unsafe methods also need CSRF.

    The token is accepted from ``?token=`` or from the monitor's cookie. A page opened
    with ``?token=`` sets the cookie (HttpOnly, SameSite=Strict) and redirects to the same
    address without the token, so it does not linger in the address bar or history.
    """

    def __init__(self, app: ASGIApp, state: MonitorState, hosts: HostCheck | None) -> None:
        self.app = app
        self.state = state
        self.hosts = hosts

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(
            candidate.encode(), self.state.token.encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.hosts is not None and not self.hosts.accepts(headers.get("host")):
            # DNS rebinding: a page of another site whose name now points at this machine.
            refusal = self.hosts.refusal(headers.get("host"))
            if kind == "websocket":
                await self._refuse_websocket(receive, send, scope, refusal, 421)
            else:
                await _plain(421, refusal, scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        from_query = next((v for k, v in query if k == "token"), None)
        cookies = SimpleCookie()
        with contextlib.suppress(Exception):
            cookies.load(headers.get("cookie", ""))
        morsel = cookies.get(self.state.cookie)
        from_cookie = morsel.value if morsel is not None else None
        authorised = self._valid(from_query) or self._valid(from_cookie)
        if kind == "websocket":
            await self._websocket(scope, receive, send, headers, authorised)
            return
        if not authorised:
            await _plain(401, _UNAUTHORISED, scope, receive, send)
            return
        method = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD", "OPTIONS"):
            problem = self._csrf_problem(headers)
            if problem:
                await _plain(403, problem, scope, receive, send, json_body=True)
                return
        if (
            self._valid(from_query)
            and method == "GET"
            and not path.startswith(("/api/", "/static/"))
        ):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            # One leading slash only: "//host/x" would send the browser elsewhere.
            location = "/" + path.lstrip("/\\") + (f"?{rest}" if rest else "")
            response = Response(status_code=303, headers={"location": location})
            self._set_cookie(response)
            await response(scope, receive, _secure(send))
            return
        await self.app(scope, receive, _secure(send))

    def _set_cookie(self, response: Response) -> None:
        response.set_cookie(
            self.state.cookie, self.state.token, httponly=True, samesite="strict", path="/"
        )

    def _csrf_problem(self, headers: Headers) -> str | None:
        given = headers.get(CSRF_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self.state.csrf.encode()):
            return (
                f"missing or wrong {CSRF_HEADER} header: state-changing requests need "
                "the CSRF token given by GET /api/info."
            )
        return _origin_problem(headers)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, authorised: bool
    ) -> None:
        problem = None if authorised else _UNAUTHORISED
        status = 401
        if problem is None:
            problem, status = _origin_problem(headers), 403
        if problem is None:
            await self.app(scope, receive, send)
            return
        await self._refuse_websocket(receive, send, scope, problem, status)

    @staticmethod
    async def _refuse_websocket(
        receive: Receive, send: Send, scope: Scope, problem: str, status: int
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            body = problem.encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": problem[:100]})


class HostCheck:
    """The host names a monitor answers to (the ``Host`` header), to resist DNS rebinding.

    ``names`` are host names or addresses, compared without the port. A wildcard address
    (``0.0.0.0``, ``::``) among them also accepts any IP address literal: a rebinding page
    needs a DNS name, never an address.
    """

    _WILDCARDS = frozenset({"0.0.0.0", "::", ""})

    def __init__(self, names: Iterable[str]) -> None:
        given = {_host_name(n) for n in names}
        self.any_address = bool(given & self._WILDCARDS)
        self.names = frozenset(given - self._WILDCARDS)

    def accepts(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is for this monitor."""
        if not header:
            return False
        name = _host_name(header, with_port=True)
        if name in self.names:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    def refusal(self, header: str | None) -> str:
        """The message of a refused request."""
        names = ", ".join(sorted(self.names)) + (", or an IP address" if self.any_address else "")
        return (
            f"421: this partita monitor answers to {names}; the request named {header!r} "
            "(Host header). Open the address the monitor printed.\n"
        )


def _host_name(text: str, *, with_port: bool = False) -> str:
    """``Localhost.:8080`` → ``localhost``; ``[::1]:8080`` → ``::1``."""
    text = text.strip().lower()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif with_port and text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


_UNAUTHORISED = (
    "401: this partita monitor needs its access token. Open the address it printed "
    "(http://127.0.0.1:PORT/?token=...), or pass ?token= with each request.\n"
)


def _origin_problem(headers: Headers) -> str | None:
    """A browser request from another origin (Origin, or Sec-Fetch-Site) is refused."""
    origin = headers.get("origin")
    host = headers.get("host", "")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
            return f"cross-origin request refused (Origin {origin} is not http://{host})."
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})."
    return None


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        # The hash is that of an empty <style>: plotly.js fills one through the CSSOM, which
        # the policy allows; style elements with content stay refused.
        b"default-src 'self'; script-src 'self'; "
        b"style-src 'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; "
        b"img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


def _secure(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in _SECURITY_HEADERS if n not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


async def _plain(
    status: int, text: str, scope: Scope, receive: Receive, send: Send, json_body: bool = False
) -> None:
    if json_body or scope["path"].startswith("/api/"):
        response: Response = JSONResponse({"error": text.strip()}, status_code=status)
    else:
        response = Response(text, status_code=status, media_type="text/plain; charset=utf-8")
    await response(scope, receive, _secure(send))
