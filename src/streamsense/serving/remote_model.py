"""A model tier in another process: the client of serving/model_server.py, with the
interface of a local model (``name``, ``version``, ``features``, ``predict_proba``), so the
cascade puts it behind the same breaker and fallbacks.

    heavy = RemoteModel("http://127.0.0.1:8100")      # reads name, version, features once
    cascade = Cascade(rules=..., light=light, heavy=heavy)

A caller that knows the model's features (from the registry both sides share) passes them,
and then the client starts even while the server is down (a worker restarted during a
model-server outage must not fail): the first answer fills in the version.

A scoring call is one HTTP/1.1 request on a kept-alive connection (one per thread). It fails
fast and says whether trying again can help: a refused connection, a connect slower than
``connect_timeout``, an answer slower than ``read_timeout`` or a 5xx raise ``RetryableError``
(the breaker counts them); a 4xx (rows the server cannot score) raises ``ConfigError``. A
kept-alive connection that the server closed (it restarted) is retried once at once on a new
connection: the request never reached a model, and scoring is idempotent. A timeout is not
retried: it would only double the wait.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError, RetryableError
from streamsense.serving.model_server import ModelInfo, ScoreReply
from streamsense.serving.models import FloatArray

__all__ = ["RemoteModel"]

_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(ScoreReply).decode
_decode_info = msgspec.json.Decoder(ModelInfo).decode
# What a kept-alive connection closed by the server looks like on the next request.
_CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class RemoteModel:
    """A model served by ``streamsense model-server`` at ``url`` (``http://host:port``)."""

    format = "remote"

    def __init__(
        self,
        url: str,
        *,
        name: str = "remote",
        features: list[str] | None = None,
        connect_timeout: float = 0.1,
        read_timeout: float = 0.5,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"a model server URL is http://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._local = threading.local()
        if features is None:  # ask the server (which must be up now)
            info = _decode_info(self._request("GET", "/healthz"))
            name, features = info.name, list(info.features)
            self.version, self.content_hash = info.version, info.content_hash
            self.runtime = f"remote {info.format}"
        else:  # known by the caller: the server may be down now
            self.version, self.content_hash, self.runtime = 0, "", "remote"
        self.name, self.features = name, list(features)
        self._width = len(self.features)

    def predict_proba(self, X: npt.NDArray[Any]) -> FloatArray:
        """(n, len(features)) → (n,), scored by the server."""
        if X.ndim != 2 or X.shape[1] != self._width:
            raise ConfigError(
                f"model {self.name} takes (n, {self._width}) rows, not an array of shape {X.shape}"
            )
        reply = _decode_reply(self._request("POST", "/v1/score", _encode({"rows": X.tolist()})))
        if len(reply.scores) != X.shape[0]:
            raise RetryableError(f"{self.url}: {len(reply.scores)} scores for {X.shape[0]} rows")
        self.version = reply.version  # the server may have been restarted on a new version
        return np.asarray(reply.scores, np.float64)

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                status, data = self._exchange(connection, method, path, body)
                break
            except _ConnectionClosed:
                self.close()
                if not reused or attempt == 2:
                    raise
            except RetryableError:
                self.close()
                raise
        return _checked(self.url, status, data)

    def _exchange(
        self, connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            if connection.sock is None:
                self._connect(connection)
            connection.request(method, self._prefix + path, body, headers)
            response = connection.getresponse()
            return response.status, response.read()
        except _CLOSED as error:
            raise _ConnectionClosed(f"model server {self.url} closed the connection") from error
        except (OSError, http.client.HTTPException) as error:
            # Refused, timed out, reset mid-answer: the server is down, hung or restarting.
            raise RetryableError(f"model server {self.url} unavailable: {error!r}") from error

    def _connect(self, connection: http.client.HTTPConnection) -> None:
        connection.timeout = self.connect_timeout
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(self.read_timeout)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether it was used before."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.sock is not None:
            return connection, True
        connection = http.client.HTTPConnection(self._host, self._port)
        self._local.connection = connection
        return connection, False

    def __repr__(self) -> str:
        return f"<RemoteModel {self.name} v{self.version} at {self.url}>"


class _ConnectionClosed(RetryableError):
    """The server closed a connection before answering (a kept-alive one: it restarted)."""


def _checked(url: str, status: int, data: bytes) -> bytes:
    if status < 300:
        return data
    message = data[:300].decode(errors="replace")
    if status >= 500:
        raise RetryableError(f"model server {url} answered {status}: {message}")
    raise ConfigError(f"model server {url} refused the request ({status}): {message}")
