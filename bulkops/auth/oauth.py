"""OAuth 1.0a signed requests of integrations, checked as Magento's
`Magento\\Framework\\Oauth\\Oauth::validateAccessTokenRequest` checks them (with
`Integration\\Model\\Oauth\\Token\\Provider` and `Nonce\\Generator`), with the same messages.

Magento 2.4 answers an `OauthInputException` (missing parameters, a bad timestamp, an
unsupported method or version) with 400 and any other OAuth error with 401; so do we."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from oauthlib.oauth1.rfc5849 import signature, utils

from bulkops.errors import AuthenticationError, InputError

REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_nonce",
    "oauth_timestamp",
    "oauth_token",
)
# Magento's lengths of consumer keys and tokens (`Framework\Oauth\Helper\Oauth`).
CREDENTIAL_LENGTH = 32
# Magento 2.4.4+ signs with HMAC-SHA256 only; earlier 2.4 releases (and many clients) use SHA1.
SIGNERS: Mapping[str, Callable[[str, str, str], str]] = {
    "HMAC-SHA1": signature.sign_hmac_sha1,
    "HMAC-SHA256": signature.sign_hmac_sha256,
}

INVALID_SIGNATURE = "The signature is invalid. Verify and try again."
INVALID_TIMESTAMP = "Incorrect timestamp value in the oauth_timestamp parameter"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a signature covers: the method, the URI as the client sent it (scheme, Host and
    path, without the query), the raw query string, and the header's protocol parameters."""

    method: str
    uri: str
    query: str
    protocol: Mapping[str, str]


def protocol_parameters(authorization: str) -> dict[str, str] | None:
    """The `oauth_*` parameters of an `OAuth ...` Authorization header (percent-decoded, realm
    left out); None for any other scheme. A malformed header has none."""
    scheme, _, _ = authorization.partition(" ")
    if scheme.lower() != "oauth":
        return None
    try:
        pairs = utils.parse_authorization_header(authorization)
    except ValueError:
        return {}
    return {name: utils.unescape(value) for name, value in pairs if name.startswith("oauth_")}


def check_protocol(protocol: Mapping[str, str]) -> None:
    """Magento's `_validateProtocolParams`, but the nonce: 400 for what is missing or unknown."""
    version = protocol.get("oauth_version")
    if version is not None and version != "1.0":
        raise InputError('The "%1" Oauth version isn\'t supported.', [version])
    missing = [InputError.required(name) for name in REQUIRED if name not in protocol]
    if missing:
        raise InputError.aggregate(missing)
    if len(protocol["oauth_token"]) != CREDENTIAL_LENGTH:
        raise InputError("The token length is invalid. Check the length and try again.")
    method = protocol["oauth_signature_method"]
    if method not in SIGNERS:
        raise InputError("Signature method %1 is not supported", [method])
    if len(protocol["oauth_consumer_key"]) != CREDENTIAL_LENGTH:
        raise AuthenticationError("Consumer key is not the correct length")


def check_timestamp(protocol: Mapping[str, str], now: int, window: int) -> int:
    """The request's timestamp, if within `window` seconds of `now`. Magento refuses only
    timestamps in the future; a past one is refused too here, so that the nonces kept for
    the window are enough to refuse every replay."""
    value = protocol["oauth_timestamp"]
    # Digits only (PHP's (int) reads anything else as 0), and few enough for `int`.
    timestamp = int(value) if value.isascii() and value.isdigit() and len(value) < 20 else 0
    if timestamp <= 0 or abs(timestamp - now) > window:
        raise InputError(INVALID_TIMESTAMP)
    return timestamp


def signature_matches(request: SignedRequest, consumer_secret: str, token_secret: str) -> bool:
    """RFC 5849 section 3.4: the query's parameters (literal or percent-encoded brackets
    alike, `+` as a space) and the header's, but the signature, are part of the base string.
    Bodies are JSON, never form-encoded, so they are not."""
    parameters = parse_qsl(request.query, keep_blank_values=True)
    parameters += [(k, v) for k, v in request.protocol.items() if k != "oauth_signature"]
    try:
        base_uri = signature.base_string_uri(request.uri)
    except ValueError:
        return False
    # The stubs narrow both arguments: the method to the common ones (any is read alike) and
    # the parameters to a dict (the function iterates pairs, so repeated names survive).
    base = signature.signature_base_string(
        request.method.upper(),  # type: ignore[arg-type]
        base_uri,
        signature.normalize_parameters(parameters),  # type: ignore[arg-type]
    )
    sign = SIGNERS[request.protocol["oauth_signature_method"]]
    expected = sign(base, consumer_secret, token_secret)
    return hmac.compare_digest(expected.encode(), request.protocol["oauth_signature"].encode())
