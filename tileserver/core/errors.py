"""The error tree: each class carries its HTTP status and OGC exception code.

One Flask handler (in `tileserver.web.app`) turns any of them into an OGC exception JSON body, so a
view raises and never builds an error response itself.
"""

from __future__ import annotations


class EcartoError(Exception):
    """Base of every error the server or the ingest reports to a person."""

    status = 500
    code = "ServerError"

    def __init__(self, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


class BadRequest(EcartoError):
    """A parameter the client sent cannot be used."""

    status = 400
    code = "InvalidParameterValue"


class UnknownParameter(BadRequest):
    """A query parameter the resource does not know."""

    code = "InvalidParameter"


class NotFound(EcartoError):
    """No such collection, feature, tile matrix, style or raster."""

    status = 404
    code = "NotFound"


class NotAcceptable(EcartoError):
    """The client asked for a format we cannot produce."""

    status = 406
    code = "NotAcceptable"


class Unavailable(EcartoError):
    """The store cannot answer now (database down, nothing ingested yet)."""

    status = 503
    code = "ServiceUnavailable"


class Timeout(Unavailable):
    """A query ran past the request deadline (`ECARTO_REQUEST_TIMEOUT`) and was cancelled."""

    code = "Timeout"

    def __init__(self, description: str, *, retry_after: int | None = 10):
        super().__init__(description, retry_after=retry_after)


class Busy(Unavailable):
    """Too many expensive requests run already in this worker (`ECARTO_MAX_EXPENSIVE`)."""

    code = "Busy"

    def __init__(self, description: str, *, retry_after: int | None = 2):
        super().__init__(description, retry_after=retry_after)


class IngestError(EcartoError):
    """An ingest cannot go on: a source is unreachable or unusable as a whole."""


class ConfigError(EcartoError):
    """A setting or a manifest entry is wrong; raised at start-up, never per request."""
