"""Safe serving of the review app: which address it may bind to and the access token it then needs.

The app shows patient images and writes the study table, so it listens on the loopback interface
by default (only this computer reaches it). Binding to any other address (``0.0.0.0``, a LAN
address, a host name) exposes it to the network; it is refused unless an access token of at least
:data:`MIN_TOKEN_LENGTH` characters guards it. :func:`token_middleware` checks the token on every
HTTP request (the page, its assets and the websocket upgrade): ``?token=...`` in the address, or the
cookie :data:`COOKIE` that the first request with the right token sets (``HttpOnly``: page scripts
cannot read it; ``SameSite=Strict``: another site's page cannot make the browser send it).
Tokens are compared in constant time (:func:`hmac.compare_digest`).

Pure: aiohttp (which trame serves with) is imported inside :func:`token_middleware` only.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Optional

from netpet.errors import printable
from netpet.review.study import ReviewError

#: host names and addresses that reach this computer only (any 127.0.0.0/8 or ::1 address counts too)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
#: the least token length: 16 URL-safe characters carry 96 bits (64 symbols each), beyond guessing over a network;
#: :func:`new_token` makes 32 (24 random bytes, :func:`secrets.token_urlsafe`)
MIN_TOKEN_LENGTH = 16
#: the cookie that carries the token after the first request
COOKIE = "netpet_token"
#: the body of a refused request (one sentence, no detail of what was wrong)
REFUSED = ("netpet review: access refused: open the address with ?token=... as printed when the server started.\n")


class ServingError(ReviewError):
    """The server would be exposed without protection, or its token is unusable (the message says what to do)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches this computer only: :data:`LOOPBACK` (any letter case; RFC 6761 reserves
    ``localhost`` for loopback) or any loopback IP address however spelt (127.0.0.0/8, ``::1``,
    ``0:0:0:0:0:0:0:1``, ``[::1]``, ``::ffff:127.0.0.1``); an empty host (every interface), ``0.0.0.0``, ``::``
    and any other name are not."""
    text = (host or "").strip().strip("[]")
    if text.lower() in LOOPBACK:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:  # a host name other than localhost, or a short form such as 127.1: a token is asked for
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1 on an IPv6 socket
    return address.is_loopback or bool(mapped is not None and mapped.is_loopback)


def check_token(token: str) -> str:
    """``token`` when it is usable: at least :data:`MIN_TOKEN_LENGTH` characters, printable ASCII without spaces
    (it travels in an address and a cookie).

    Raises
    ------
    ServingError
        A shorter token, or one with other characters.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        raise ServingError(f"netpet review: the --token has {len(token)} characters; give at least "
                           f"{MIN_TOKEN_LENGTH} (leave --token out on 127.0.0.1 to have one made).")
    if not all("!" <= c <= "~" for c in token) or any(c in token for c in ";,\"\\"):
        raise ServingError("netpet review: the --token holds spaces, control characters, non-ASCII letters or one of "
                           "; , \" \\; use letters, digits, - and _ only.")
    return token


def check_bind(host: str, token: Optional[str]) -> Optional[str]:
    """Check that the server may listen on ``host`` with ``token``.

    Parameters
    ----------
    host : str
        The address to bind to.
    token : str or None
        The access token given (None: none).

    Returns
    -------
    str or None
        ``token`` unchanged; None on a loopback host without a token (none is needed there).

    Raises
    ------
    ServingError
        A host other than loopback without a token, or any token shorter than :data:`MIN_TOKEN_LENGTH`
        or with characters an address or cookie cannot carry (:func:`check_token`).
    """
    if token is not None:
        check_token(token)
    if token is None and not is_loopback(host):
        raise ServingError(f"netpet review: binding to {printable(host or '(every interface)')} exposes patient images "
                           f"to the network; give --token TOKEN (at least {MIN_TOKEN_LENGTH} characters) or bind to "
                           "127.0.0.1.")
    return token


def new_token() -> str:
    """A fresh access token: 24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def token_ok(expected: Optional[str], given: Optional[str]) -> bool:
    """Whether ``given`` matches ``expected`` (constant-time); any request passes when ``expected`` is None."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


def token_middleware(expected: Optional[str]):
    """An aiohttp middleware that lets through only requests that carry the token.

    A request passes with ``?token=`` equal to ``expected`` (its response then sets the cookie
    :data:`COOKIE`: ``HttpOnly``, ``SameSite=Strict``, path ``/``, for the session of the browser) or with that
    cookie; any other request, the websocket upgrade included, gets 403 with the one-line body
    :data:`REFUSED`. With ``expected`` None every request passes (a loopback server without a token).

    Parameters
    ----------
    expected : str or None
        The access token.

    Returns
    -------
    callable
        The middleware, for ``aiohttp.web.Application(middlewares=[...])`` or ``app.middlewares.append``.
    """
    from aiohttp import web

    @web.middleware
    async def netpet_token(request, handler):
        if expected is None:
            return await handler(request)
        by_query = token_ok(expected, request.query.get("token"))
        if not by_query and not token_ok(expected, request.cookies.get(COOKIE)):
            return web.Response(status=403, text=REFUSED, content_type="text/plain")
        try:
            response = await handler(request)
        except web.HTTPException as raised:  # a redirect (or error) raised by the handler carries the cookie too
            if by_query:
                raised.set_cookie(COOKIE, expected, httponly=True, samesite="Strict", path="/")
            raise
        # a prepared response (a websocket after it closed) has sent its headers: the cookie cannot go any more
        if by_query and not response.prepared:
            response.set_cookie(COOKIE, expected, httponly=True, samesite="Strict", path="/")
        return response

    return netpet_token
