"""Signed bearer tokens (JWT): who acts, in which role, for which unit, grids or case.

HS256 with a shared secret by default; RS256/ES256 when a public key is
configured (tokens are then issued by another system holding the private key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson

from cases.actor import Actor
from cases.vocabulary import Role
from config.settings import DEV_JWT_SECRET, Settings

DEV_SECRET = DEV_JWT_SECRET  # accepted only outside production (Settings.check_secrets)
# The demo district's people, one per role: `minqing token dev` prints a token for each.
DEV_ACTORS: list[dict[str, Any]] = [
    {"role": Role.INTAKE_CLERK, "sub": "CL001"},
    {"role": Role.GRID_LEADER, "sub": "GL0001"},
    {"role": Role.TOWNSHIP, "sub": "T0011", "unit": "350105001"},
    {"role": Role.DEPARTMENT, "sub": "D-zhujian-1", "unit": "zhujian"},
    {"role": Role.LEADER, "sub": "LD001"},
    {"role": Role.SUPERVISION, "sub": "SV001"},
    {"role": Role.AUDITOR, "sub": "AU001"},
    {"role": Role.INTEGRATOR, "sub": "IN001"},
    {"role": Role.ADMIN, "sub": "AD001"},
]
ISSUER = "minqing"
LEEWAY = 30  # seconds of clock skew allowed on `exp`
VERIFIED_CACHE = 10_000  # tokens whose signature and claims were checked, per process
DEFAULT_TTL = 8 * 3600
RESIDENT_TTL = 180 * 86400  # printed on the receipt: lasts as long as a case may


class TokenError(Exception):
    """401: the request does not prove who sends it."""

    def __init__(self, code: str, message: str, description: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.description = description  # ASCII: it goes into WWW-Authenticate


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


HS256_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')  # PyJWT's header for HS256, byte for byte


def hs256(claims: dict[str, Any], secret: str) -> str:
    """A JWT signed with HMAC-SHA256, as `jwt.encode(claims, secret, algorithm="HS256")` makes it
    (PyJWT decodes it): without PyJWT's key preparation and checks on every call, which were 170 µs
    of each registration's resident token (issue 15), against 20 µs here."""
    signed = HS256_HEADER + b"." + _b64(orjson.dumps(claims))
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return (signed + b"." + _b64(signature)).decode("ascii")


@dataclass(frozen=True)
class Principal:
    actor: Actor
    grids: frozenset[str] = frozenset()
    case: str | None = None  # a resident's one case
    grants: frozenset[str] = frozenset()
    token_id: str = ""  # rate limiting and logs: never the token itself
    expires: float | None = None  # the token's `exp` (seconds since the epoch): a live stream ends then

    @property
    def role(self) -> Role:
        return self.actor.role


@dataclass(frozen=True)
class TokenKeys:
    algorithm: str
    signing_key: str | None
    verifying_key: str
    dev: bool = field(default=False)
    # The same token is checked once (issue 15: PyJWT's decode was a tenth of a command's CPU). Its
    # signature and claims cannot change; only time can expire it, and that is checked on every use.
    _verified: dict[str, Principal] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys:
        settings.check_secrets()
        if settings.jwt_public_key:
            return cls(settings.jwt_algorithm, settings.jwt_secret, settings.jwt_public_key)
        secret = settings.jwt_secret or DEV_SECRET
        return cls("HS256", secret, secret, dev=settings.jwt_secret is None)

    @property
    def can_issue(self) -> bool:
        return self.signing_key is not None and self.algorithm == "HS256"

    def issue(
        self,
        role: Role,
        sub: str,
        *,
        unit: str | None = None,
        grids: list[str] | None = None,
        case: str | None = None,
        grants: list[str] | None = None,
        ttl: int | None = None,
        now: float | None = None,
    ) -> str:
        if not self.can_issue or self.signing_key is None:
            raise ValueError("this service only verifies tokens: issue them where the private key is")
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": sub,
            "role": str(role),
            "iat": issued,
            "exp": issued + (ttl if ttl is not None else RESIDENT_TTL if role == Role.RESIDENT else DEFAULT_TTL),
            "jti": uuid.uuid4().hex,
        }
        optional = {"unit": unit, "grids": grids, "case": case, "grants": grants}
        claims.update({k: v for k, v in optional.items() if v})
        return hs256(claims, self.signing_key)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known.expires is not None and time.time() <= known.expires + LEEWAY:
            return known
        principal = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()  # crude, but bounded
        self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.verifying_key,
                algorithms=[self.algorithm],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "role", "iss"]},
                leeway=LEEWAY,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "令牌已过期，请重新获取。", "The token has expired") from None
        except jwt.InvalidTokenError:
            raise TokenError("token_invalid", "令牌无效：签名、签发方或内容不正确。", "The token is invalid") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise TokenError("token_invalid", "令牌中的角色无效。", "Unknown role in token") from None
        if role == Role.RESIDENT and not claims.get("case"):
            raise TokenError("token_invalid", "居民令牌须指明所属案件。", "Resident token without case") from None
        return Principal(
            actor=Actor(str(claims["sub"]), role, claims.get("unit")),
            grids=frozenset(str(g) for g in claims.get("grids") or ()),
            case=claims.get("case"),
            grants=frozenset(str(g) for g in claims.get("grants") or ()),
            token_id=claims.get("jti") or hashlib.sha256(token.encode()).hexdigest()[:16],
            expires=float(claims["exp"]),
        )
