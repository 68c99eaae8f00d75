"""The UI's authentication, the same key as the API's: a request carrying
``Authorization: Bearer KEY`` is let in as it is (scripts, reverse proxies); a browser logs
in once with the key and gets a signed, http-only session cookie. The cookie is an expiry
and an HMAC of it under a secret derived from the key, so changing the key logs everyone out
and nothing is kept on the server. Forms that change state carry a CSRF token bound to the
session (an HMAC of the cookie), which another site cannot read or forge."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "streamsense_ui"
SESSION_S = 12 * 3600


class UiAuth:
    def __init__(self, api_key: str | None, session_s: int = SESSION_S) -> None:
        self.api_key = api_key
        self.session_s = session_s
        seed = secrets.token_bytes(32) if api_key is None else api_key.encode()
        self._secret = hashlib.sha256(b"streamsense-ui-session\0" + seed).digest()

    @property
    def open(self) -> bool:
        """No API key set: the UI, like the API, asks for none."""
        return self.api_key is None

    def key_matches(self, given: str) -> bool:
        return self.api_key is not None and secrets.compare_digest(given.strip(), self.api_key)

    def bearer_ok(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.key_matches(token)

    def new_session(self, now_s: float | None = None) -> str:
        expires = int((time.time() if now_s is None else now_s) + self.session_s)
        return f"{expires}.{self._sign(str(expires))}"

    def session_ok(self, cookie: str, now_s: float | None = None) -> bool:
        expires, _, signature = cookie.partition(".")
        if not expires.isdigit() or not secrets.compare_digest(signature, self._sign(expires)):
            return False
        return int(expires) > (time.time() if now_s is None else now_s)

    def allowed(self, authorization: str, cookie: str) -> bool:
        return self.open or self.bearer_ok(authorization) or self.session_ok(cookie)

    def csrf_token(self, cookie: str) -> str:
        """The token forms carry: bound to the session (or to "bearer" for header callers)."""
        return self._sign("csrf:" + (cookie or "bearer"))

    def csrf_ok(self, cookie: str, token: str) -> bool:
        return secrets.compare_digest(token, self.csrf_token(cookie))

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()
