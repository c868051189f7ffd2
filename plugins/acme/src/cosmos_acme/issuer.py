"""ACME account, order, HTTP-01 challenge and certificate, through certbot's ``acme`` library.

No hand-written JWS: :class:`Issuer` drives ``acme.client.ClientV2``.  The
account key is an EC P-256 key (ES256); certificate keys are EC P-256 too.
``acme``, ``josepy`` and ``cryptography`` are imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable

from cosmos_core.errors import CosmosError

USER_AGENT = "cosmos-acme/0.1"
#: Seconds to wait after a ``rateLimited`` error that carries no ``Retry-After`` header.
RATE_LIMIT_DEFAULT = 3600.0


class AcmeError(CosmosError):
    """An ACME step failed.  ``retry_after``: seconds the server asked to wait (its ``Retry-After``
    header, or :data:`RATE_LIMIT_DEFAULT` for a ``rateLimited`` error without one), else None."""

    def __init__(self, message: str, retry_after: float | None = None, kind: str = "error") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


@dataclass(frozen=True)
class Account:
    """An ACME account: its private key (PEM, secret) and registration (JSON text)."""

    key_pem: bytes
    registration: str

    def to_json(self) -> bytes:
        return json.dumps({"key": self.key_pem.decode(), "registration": json.loads(self.registration)},
                          sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Account":
        raw = json.loads(data)
        return cls(raw["key"].encode(), json.dumps(raw["registration"], sort_keys=True))


def new_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _jwk(key_pem: bytes) -> Any:
    import josepy
    from cryptography.hazmat.primitives import serialization

    return josepy.JWKEC(key=serialization.load_pem_private_key(key_pem, password=None))


def _translate(exc: BaseException, step: str, retry_after: float | None = None) -> AcmeError:
    """One-line AcmeError for a library or network exception.

    ``retry_after``: seconds from the failing response's ``Retry-After`` header
    (None: it had none); a ``rateLimited`` error without one waits
    :data:`RATE_LIMIT_DEFAULT` seconds.
    """
    import requests
    from acme import errors, messages

    if isinstance(exc, AcmeError):
        return exc
    if isinstance(exc, messages.Error):
        kind = (exc.typ or "").rsplit(":", 1)[-1] or "error"
        if kind == "rateLimited" and retry_after is None:
            retry_after = RATE_LIMIT_DEFAULT
        return AcmeError(f"{step}: {kind}: {exc.detail or exc.title or exc}", kind=kind, retry_after=retry_after)
    if isinstance(exc, errors.ValidationError):
        details = "; ".join(
            f"{authz.body.identifier.value}: {getattr(ch.error, 'detail', None) or ch.status}"
            for authz in exc.failed_authzrs for ch in authz.body.challenges if ch.error
        )
        return AcmeError(f"{step}: challenge failed: {details or 'invalid authorization'}", kind="challenge")
    if isinstance(exc, errors.TimeoutError):
        return AcmeError(f"{step}: the ACME server did not finish the order in time", kind="timeout")
    if isinstance(exc, requests.RequestException):
        return AcmeError(f"{step}: ACME server unreachable ({type(exc).__name__}: {_short(exc)})", kind="unreachable")
    return AcmeError(f"{step}: {type(exc).__name__}: {_short(exc)}", retry_after=retry_after)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    Returns None for a missing or unreadable value; a date in the past is 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


class Issuer:
    """One ACME client for ``directory`` with contact ``email``.

    ``ca_bundle``: a CA file for the ACME server's own TLS (a private CA); None
    uses the system store.  Every public method raises :class:`AcmeError` with
    one line naming the step and the cause.
    """

    def __init__(self, directory: str, email: str | None, ca_bundle: str | None = None,
                 timeout: float = 30.0) -> None:
        self.directory_url = directory
        self.email = email
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._client: Any = None

    def account(self, stored: Account | None) -> Account:
        """The account to use: ``stored`` (its key and URL reused; the server judges it at the first
        order) or a new one (terms of service agreed, ``email`` as contact)."""
        from acme import client, messages

        try:
            if stored is not None:
                regr = messages.RegistrationResource.json_loads(stored.registration)
                net = self._net(stored.key_pem, regr)
                self._client = client.ClientV2(client.ClientV2.get_directory(self.directory_url, net), net)
                return stored
            key_pem = new_key_pem()
            net = self._net(key_pem, None)
            acme = client.ClientV2(client.ClientV2.get_directory(self.directory_url, net), net)
            registration = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
            regr = acme.new_account(registration)
            self._client = acme
            return Account(key_pem, regr.json_dumps())
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            raise _translate(exc, "account", self._retry_after()) from None

    def _net(self, key_pem: bytes, regr: Any) -> Any:
        import josepy
        from acme import client

        class Network(client.ClientNetwork):
            """Remembers the last response, so a failure's ``Retry-After`` can be read."""

            last_response: Any = None

            def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                self.last_response = None  # a network error must not see an earlier answer's header
                self.last_response = super()._send_request(method, url, *args, **kwargs)
                return self.last_response

        verify: Any = self.ca_bundle or True
        self._network = Network(_jwk(key_pem), account=regr, alg=josepy.ES256, verify_ssl=verify,
                                user_agent=USER_AGENT, timeout=int(self.timeout))
        return self._network

    def _retry_after(self) -> float | None:
        """Seconds the last response asked to wait (``Retry-After``) if it was an error, else None."""
        response = getattr(getattr(self, "_network", None), "last_response", None)
        if response is None or response.ok:
            return None
        return parse_retry_after(response.headers.get("Retry-After"))

    def issue(self, names: list[str], publish: Callable[[str, str], None],
              unpublish: Callable[[str], None]) -> tuple[bytes, bytes]:
        """Order a certificate for ``names`` over HTTP-01.

        ``publish(token, key_authorization)`` must make HAProxy answer the
        challenge before it returns; ``unpublish(token)`` is called after the
        order, whatever its outcome.  Returns ``(fullchain PEM, private key PEM)``.
        """
        from acme import challenges, crypto_util

        if self._client is None:
            raise AcmeError("order: no account (call account() first)")
        key_pem = new_key_pem()
        tokens: list[str] = []
        try:
            order = self._client.new_order(crypto_util.make_csr(key_pem, names))
            for authz in order.authorizations:
                if authz.body.status.name == "valid":
                    continue
                challb = next((c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)), None)
                if challb is None:
                    raise AcmeError(f"order: the server offers no http-01 challenge for {authz.body.identifier.value}",
                                    kind="challenge")
                response, validation = challb.response_and_validation(self._client.net.key)
                token = challb.chall.encode("token")
                publish(token, validation)
                tokens.append(token)
                self._client.answer_challenge(challb, response)
            deadline = dt.datetime.now() + dt.timedelta(seconds=self.timeout)
            order = order.update(authorizations=[self._await(authz, deadline) for authz in order.authorizations])
            order = self._client.finalize_order(order, deadline)
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            raise _translate(exc, "order", self._retry_after()) from None
        finally:
            for token in tokens:
                try:
                    unpublish(token)
                except CosmosError:
                    pass
        return order.fullchain_pem.encode(), key_pem

    def _await(self, authz: Any, deadline: dt.datetime) -> Any:
        """Poll one authorization until it leaves ``pending`` (50 ms doubling to 1 s, unlike the
        library's fixed 1 s); raise the library's ValidationError if it is not ``valid``."""
        import time

        from acme import errors, messages

        delay = 0.05
        while authz.body.status == messages.STATUS_PENDING:
            if dt.datetime.now() > deadline:
                raise errors.TimeoutError()
            time.sleep(delay)
            delay = min(1.0, delay * 2)
            authz, _ = self._client.poll(authz)
        if authz.body.status != messages.STATUS_VALID:
            raise errors.ValidationError([authz])
        return authz
