"""Who may talk to ``tfsal serve``, and how the channel is protected: TLS (optionally with client
certificates) and a bearer token checked on every call (``docs/security.md``).

The token travels in the ``authorization`` metadata as ``Bearer <token>``, as gRPC's own access
token credentials send it; the standard health service answers without it, so that probes need
no secret (it says only whether the server is up).
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from tfsal.errors import TfsalError

__all__ = ["HEALTH_PREFIX", "ChannelSecurity", "ServerSecurity", "read_secret", "read_token"]

HEALTH_PREFIX = "/grpc.health.v1.Health/"
"""The methods of the standard health service: answered without a token."""

_MAX_SECRET_BYTES = 64 * 1024


def read_secret(path: str | os.PathLike | None, what: str) -> bytes | None:
    """A certificate, key or token file's bytes (None for None).

    Raises:
        TfsalError: missing, not a regular file, empty or over 64 KiB.
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise TfsalError(f"{path}: no such {what} file")
    if path.stat().st_size > _MAX_SECRET_BYTES:
        raise TfsalError(f"{path}: too large for a {what} file")
    data = path.read_bytes()
    if not data.strip():
        raise TfsalError(f"{path}: an empty {what} file")
    return data


def read_token(path) -> str | None:
    """The bearer token in ``path`` (surrounding whitespace removed), or None for None."""
    data = read_secret(path, "token")
    if data is None:
        return None
    token = data.decode("utf-8", "replace").strip()
    if any(c.isspace() for c in token) or not token.isprintable():
        raise TfsalError(f"{path}: a token is one line of printable characters without spaces")
    return token


class _TokenCheck(grpc.ServerInterceptor):
    """UNAUTHENTICATED for a call whose ``authorization`` metadata is not ``Bearer <token>``."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required (--token-file)")

        self._refusal = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(HEALTH_PREFIX):
            return continuation(handler_call_details)
        given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        given = given.encode() if isinstance(given, str) else given
        if hmac.compare_digest(given, self._expected):  # constant time: the comparison leaks no prefix
            return continuation(handler_call_details)
        return self._refusal


@dataclass(frozen=True)
class ServerSecurity:
    """The server's side: a certificate and key for TLS (None: plaintext), a client CA (clients
    must then present a certificate it signed) and a bearer token (None: none asked)."""

    cert: bytes | None = None
    key: bytes | None = None
    client_ca: bytes | None = None
    token: str | None = None

    @classmethod
    def from_files(cls, cert=None, key=None, client_ca=None, token_file=None) -> ServerSecurity:
        """Read the files named; a certificate needs its key and a client CA needs both.

        Raises:
            TfsalError: a file is missing or unreadable, or only half of a pair is given.
        """
        if (cert is None) != (key is None):
            raise TfsalError("--tls-cert and --tls-key go together")
        if client_ca is not None and cert is None:
            raise TfsalError("--tls-client-ca needs --tls-cert and --tls-key")
        return cls(read_secret(cert, "certificate"), read_secret(key, "key"), read_secret(client_ca, "CA"),
                   read_token(token_file))

    @property
    def tls(self) -> bool:
        return self.cert is not None

    def interceptors(self) -> list:
        return [_TokenCheck(self.token)] if self.token else []

    def add_port(self, server, address: str) -> int:
        """Bind ``address`` on ``server``, with TLS when a certificate is given; the port bound."""
        if not self.tls:
            return server.add_insecure_port(address)
        credentials = grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.client_ca,
                                                  require_client_auth=self.client_ca is not None)
        return server.add_secure_port(address, credentials)


@dataclass(frozen=True)
class ChannelSecurity:
    """The client's side: TLS with a CA to trust (None with ``tls``: the system's roots), an
    optional client certificate and key, and the bearer token to send."""

    tls: bool = False
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    token: str | None = None

    @classmethod
    def from_files(cls, tls=False, ca=None, cert=None, key=None, token_file=None) -> ChannelSecurity:
        """Read the files named; any of ``ca``, ``cert`` and ``key`` implies TLS.

        Raises:
            TfsalError: a file is missing or unreadable, or only half of a pair is given.
        """
        if (cert is None) != (key is None):
            raise TfsalError("--tls-cert and --tls-key go together")
        return cls(bool(tls or ca or cert), read_secret(ca, "CA"), read_secret(cert, "certificate"),
                   read_secret(key, "key"), read_token(token_file))

    def channel(self, target: str, options) -> grpc.Channel:
        if not self.tls:
            return grpc.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                                   certificate_chain=self.cert)
        return grpc.secure_channel(target, credentials, options=options)

    def metadata(self) -> tuple:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()
