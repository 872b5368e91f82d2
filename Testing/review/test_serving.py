"""netpet.review.serving: bind rules, tokens and the token middleware on a real aiohttp server (loopback)."""

import asyncio

import pytest

from netpet.review import serving
from netpet.review.serving import COOKIE, REFUSED, ServingError, check_bind, new_token, token_middleware, token_ok
from netpet.review.study import ReviewError

GOOD = "abcdefghijklmnop"  # exactly MIN_TOKEN_LENGTH (16) characters


# 127.0.0.0/8 is loopback as a whole (RFC 1122 3.2.1.3): 127.0.0.2 never leaves the computer; ::1 in its long,
# bracketed and IPv4-mapped spellings
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2", "127.255.255.254", "[::1]",
                                  "LOCALHOST", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", " 127.0.0.1 "])
def test_loopback_needs_no_token(host):
    assert check_bind(host, None) is None
    assert check_bind(host, GOOD) == GOOD


# every interface (0.0.0.0, ::, "", ::ffff:0.0.0.0), a LAN address, a name; 127.1 (a short form the resolver may
# take as 127.0.0.1) and localhost.example.org are refused too: refusing asks only for a token
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "", "pet-workstation.example.org", "::ffff:0.0.0.0",
                                  "127.1", "localhost.example.org", "128.0.0.1"])
def test_other_hosts_need_a_token(host):
    with pytest.raises(ServingError) as raised:
        check_bind(host, None)
    message = str(raised.value)
    assert "exposes patient images to the network" in message and "--token" in message and "127.0.0.1" in message
    assert check_bind(host, GOOD) == GOOD
    assert isinstance(raised.value, ReviewError)  # the CLI's input-error exit code


def test_short_or_unsafe_tokens_refused():
    with pytest.raises(ServingError, match="15 characters; give at least 16"):
        check_bind("0.0.0.0", GOOD[:-1])
    with pytest.raises(ServingError, match="15 characters"):  # a weak token is refused on loopback too
        check_bind("127.0.0.1", GOOD[:-1])
    for bad in (GOOD + " x", GOOD + ";", GOOD + "é", GOOD + "\n"):
        with pytest.raises(ServingError, match="letters, digits"):
            check_bind("0.0.0.0", bad)


def test_new_token_is_long_random_and_accepted():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 32 for t in tokens)  # 24 bytes, base64: 32 characters
    assert all(check_bind("0.0.0.0", t) == t for t in tokens)


def test_token_ok():
    assert token_ok(None, None) and token_ok(None, "anything")
    assert token_ok(GOOD, GOOD)
    assert not token_ok(GOOD, None)
    assert not token_ok(GOOD, GOOD[:-1])
    assert not token_ok(GOOD, GOOD + "x")
    assert not token_ok(GOOD, "\udcff" * 16)  # a lone surrogate from a mangled query: no exception, refused


def test_token_ok_compares_in_constant_time(monkeypatch):
    """The comparison is hmac.compare_digest's (whose time does not depend on where the strings differ), on both
    the query and the cookie path."""
    calls = []
    real = serving.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(serving.hmac, "compare_digest", spy)
    assert token_ok(GOOD, GOOD) and not token_ok(GOOD, "x" * 16)
    assert calls == [(GOOD.encode(), GOOD.encode()), (GOOD.encode(), b"x" * 16)]


def _serve(expected, requests, static=None):
    """Run ``requests(client)`` against an aiohttp app with the middleware, a page and a websocket, on a free
    loopback port (aiohttp's TestServer binds 127.0.0.1 with port 0)."""
    from aiohttp import WSMsgType, web
    from aiohttp.test_utils import TestClient, TestServer

    async def page(request):
        return web.Response(text="the page")

    async def moved(request):
        raise web.HTTPFound("/index.html")

    async def socket(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo " + message.data)
        return ws

    async def main():
        app = web.Application(middlewares=[token_middleware(expected)])
        app.router.add_get("/index.html", page)
        app.router.add_get("/", moved)
        app.router.add_get("/ws", socket)
        if static is not None:
            app.router.add_static("/static", static)  # as trame serves its page's scripts
        async with TestClient(TestServer(app)) as client:
            assert client.host == "127.0.0.1"
            return await requests(client)

    return asyncio.run(main())


def test_middleware_refuses_without_token_and_sets_cookie(tmp_path):
    from aiohttp import WSServerHandshakeError

    token = new_token()
    (tmp_path / "app.js").write_text("// a static file\n")

    async def requests(client):
        out = {}
        response = await client.get("/index.html")
        out["bare"] = (response.status, await response.text(), response.headers.get("Set-Cookie"))
        wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off, never the token itself
        response = await client.get("/index.html", params={"token": wrong})
        out["wrong"] = response.status
        response = await client.get("/ws")  # the websocket's address without the token
        out["ws_bare"] = response.status
        try:  # a real websocket handshake (Upgrade headers) without the token
            await client.ws_connect("/ws")
            out["ws_upgrade"] = "connected"
        except WSServerHandshakeError as refused:
            out["ws_upgrade"] = refused.status
        response = await client.get("/static/app.js")  # a static file without the token
        out["static_bare"] = response.status
        response = await client.get("/index.html", params={"token": token})
        out["good"] = (response.status, await response.text(), response.headers.get("Set-Cookie"))
        # the cookie jar now holds the cookie: later requests need no ?token=
        response = await client.get("/index.html")
        out["by_cookie"] = (response.status, response.headers.get("Set-Cookie"))
        ws = await client.ws_connect("/ws")
        await ws.send_str("hello")
        out["ws"] = (await ws.receive()).data
        await ws.close()
        response = await client.get("/static/app.js")
        out["static"] = (response.status, await response.text())
        return out

    out = _serve(token, requests, static=str(tmp_path))
    assert out["bare"] == (403, REFUSED, None)
    assert REFUSED.count("\n") == 1 and REFUSED.rstrip().endswith(".")
    assert out["wrong"] == 403
    assert out["ws_bare"] == 403 and out["ws_upgrade"] == 403 and out["static_bare"] == 403
    assert out["static"] == (200, "// a static file\n")
    status, text, cookie = out["good"]
    assert (status, text) == (200, "the page")
    assert cookie.startswith(f"{COOKIE}={token};")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    assert out["by_cookie"] == (200, None)  # the cookie is set once, by the request with ?token=
    assert out["ws"] == "echo hello"


def test_middleware_cookie_alone_and_redirect():
    token = new_token()

    async def requests(client):
        out = {}
        client.session.cookie_jar.update_cookies({COOKIE: "not-the-token-at-all"})
        response = await client.get("/index.html")
        out["bad_cookie"] = response.status
        client.session.cookie_jar.clear()
        # a redirect raised by the handler still sets the cookie, and the redirected page then passes by it
        response = await client.get("/", params={"token": token}, allow_redirects=False)
        out["redirect"] = (response.status, response.headers.get("Set-Cookie", ""))
        response = await client.get("/", params={"token": token})
        out["followed"] = (response.status, await response.text())
        return out

    out = _serve(token, requests)
    assert out["bad_cookie"] == 403
    assert out["redirect"][0] == 302 and out["redirect"][1].startswith(f"{COOKIE}={token};")
    assert out["followed"] == (200, "the page")


def test_middleware_without_token_passes_everything():
    async def requests(client):
        response = await client.get("/index.html")
        return response.status, response.headers.get("Set-Cookie")

    assert _serve(None, requests) == (200, None)


def test_pure_modules_import_no_aiohttp_vtk_slicer_trame():
    import subprocess
    import sys

    code = ("import sys, netpet.review.serving, netpet.review.study, netpet.review.teaching; "
            "print(sorted(m for m in ('aiohttp', 'vtk', 'slicer', 'trame') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert serving.MIN_TOKEN_LENGTH == 16
