"""Which request headers may change our links: `X-Forwarded-*` only from proxies the operator trusts.

Any client can send `X-Forwarded-Host` or `X-Forwarded-Proto`; believed from anyone, they would set
the host and scheme of every link we write, and a shared cache would hand the poisoned answer to
everyone. So the headers are honoured only when the peer address is in `ECARTO_TRUSTED_PROXIES`,
and never when `ECARTO_BASE_URL` fixes the public URL; everywhere else they are dropped before
Flask sees them. A trusted proxy forwarding a scheme other than http or https is a 400.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from tileserver.core.errors import BadRequest
from tileserver.core.settings import Settings, proxy_networks
from tileserver.web.shortcut import ERROR

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
             "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")
FORWARDED_VARY = ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix")
SCHEMES = ("http", "https")


class TrustedProxies:
    """WSGI middleware applying `X-Forwarded-*` (one proxy hop) from trusted peers, dropping them otherwise."""

    def __init__(self, app: Callable, settings: Settings):
        self.app = app
        self.proxied = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
        self.networks = () if settings.base_url else proxy_networks(settings.trusted_proxies)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not self.trusts(environ.get("REMOTE_ADDR", "")):
            for key in FORWARDED:
                environ.pop(key, None)
            return self.app(environ, start_response)
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip()
        if proto and proto.lower() not in SCHEMES:
            environ.pop("HTTP_X_FORWARDED_PROTO")
            environ.setdefault(ERROR, BadRequest(f"X-Forwarded-Proto {proto[:20]!r} is neither http nor https"))
        return self.proxied(environ, start_response)

    def trusts(self, peer: str) -> bool:
        """Whether `peer` is one of the trusted proxies.

        >>> TrustedProxies(None, Settings(trusted_proxies="10.0.0.0/8")).trusts("10.1.2.3")
        True
        >>> TrustedProxies(None, Settings(trusted_proxies="10.0.0.0/8")).trusts("192.168.1.1")
        False
        """
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def vary_headers(settings: Settings) -> tuple[str, ...]:
    """The request headers an answer holding absolute links depends on (none when the URL is fixed).

    >>> vary_headers(Settings()), vary_headers(Settings(base_url="https://ecarto.example"))
    (('Host',), ())
    >>> vary_headers(Settings(trusted_proxies="10.0.0.1"))[1]
    'X-Forwarded-Proto'
    """
    if settings.base_url:
        return ()
    return ("Host", *FORWARDED_VARY) if settings.trusted_proxies.strip() else ("Host",)
