"""Who is signed in to the backstage (issue 19): login links, browser sessions and personal API tokens.

Every secret handed out is random (``secrets``), shown once, and stored only as its SHA-256
(:class:`domain.models.WebCredential`), so the database signs nobody in. Three ways in:

- **A login link** (the ``backstage`` command sends it by DM, plugins/backstage.py):
  signed by the bot, valid for :data:`LOGIN_LINK_TTL_MS`, and spent on first use through the
  store's single-use keys — a second use, or one after expiry, is refused, even after a restart or
  on another replica.
- **A session** — what a redeemed link or a Mattermost (OAuth) sign-in (backstage/oauth.py) becomes:
  the browser keeps the secret in a signed, HttpOnly, SameSite cookie (backstage/app.py); each session
  has its own CSRF token.
- **A personal API token** (``Authorization: Bearer cct_…``) for ``/api/v1``, created and revoked by its
  owner, valid until revoked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

from domain.errors import ValidationError
from domain.ids import new_id
from domain.models import CredentialKind, WebCredential
from services.context import BotContext

#: How long a login link may wait before it is used (ms).
LOGIN_LINK_TTL_MS = 10 * 60_000
#: How long a browser session lasts from its login (ms).
SESSION_TTL_MS = 12 * 3_600_000
#: What every personal API token starts with, so a leaked one is recognisable (e.g. by secret scanners).
TOKEN_PREFIX = "cct_"
#: Most API tokens one person may have at once.
MAX_TOKENS_PER_USER = 20
MAX_TOKEN_NAME = 64
LOGIN_PURPOSE = "backstage-login"
COOKIE_PURPOSE = "backstage-session"
#: The single-use key kind a login link is spent as.
LOGIN_KEY_KIND = "backstage-login"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LoginRefused(Exception):
    """A login link that cannot sign anyone in; the message says why and what to do."""


@dataclass(frozen=True)
class Issued:
    """A credential just created and its secret, which is never available again."""

    secret: str
    credential: WebCredential


class WebAuth:
    """Login links, sessions and API tokens, on the store (so every replica knows them)."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    # Login links ----------------------------------------------------------------------------

    def login_token(self, user_id: str) -> str:
        """A one-time login token for ``user_id``, valid for :data:`LOGIN_LINK_TTL_MS` from now."""
        body = {"u": user_id, "exp": self.ctx.clock() + LOGIN_LINK_TTL_MS, "n": secrets.token_urlsafe(16)}
        encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{encoded}.{self.ctx.signer.sign(LOGIN_PURPOSE, encoded)}"

    def _login_body(self, token: str) -> tuple[str, int, str]:
        """(user id, expiry, nonce) of a login token signed by us and not expired; else LoginRefused."""
        encoded, _, signature = token.partition(".")
        if not encoded or not self.ctx.signer.verify(LOGIN_PURPOSE, encoded, signature):
            raise LoginRefused("This login link is not valid. Ask for a new one in Mattermost.")
        try:
            body = json.loads(_unb64(encoded))
            user_id, expires_at, nonce = str(body["u"]), int(body["exp"]), str(body["n"])
        except (ValueError, KeyError, TypeError):  # signed by us, so only an older format could land here
            raise LoginRefused("This login link is not valid. Ask for a new one in Mattermost.") from None
        if self.ctx.clock() >= expires_at:
            raise LoginRefused("This login link has expired. Ask for a new one in Mattermost.")
        return user_id, expires_at, nonce

    def login_user(self, token: str) -> str:
        """Whom a login token would sign in, without spending it (the confirmation page names them, so a
        link someone else forwarded cannot sign a person in to that someone's account unnoticed)."""
        return self._login_body(token)[0]

    async def redeem_login(self, token: str) -> Issued:
        """Spend a login token and open a session for its user; :class:`LoginRefused` if it is forged,
        expired or already used."""
        user_id, expires_at, nonce = self._login_body(token)
        now = self.ctx.clock()
        if not await self.ctx.store.claim_single_use(LOGIN_KEY_KIND, nonce, expires_at=expires_at, now=now):
            raise LoginRefused("This login link has been used already. Ask for a new one in Mattermost.")
        return await self.open_session(user_id)

    # Sessions -------------------------------------------------------------------------------

    async def open_session(self, user_id: str) -> Issued:
        """A new browser session for ``user_id`` (after a login link or an OAuth login)."""
        now = self.ctx.clock()
        secret = secrets.token_urlsafe(32)
        credential = WebCredential(id=new_id(), token_hash=secret_hash(secret), kind=CredentialKind.SESSION,
                                   user_id=user_id, csrf=secrets.token_urlsafe(24), created_at=now,
                                   expires_at=now + SESSION_TTL_MS)
        await self.ctx.store.add_credential(credential)
        return Issued(secret, credential)

    def cookie_value(self, secret: str) -> str:
        """What the browser keeps: the session's secret and the bot's signature of it."""
        return f"{secret}.{self.ctx.signer.sign(COOKIE_PURPOSE, secret)}"

    async def session(self, cookie: str) -> WebCredential | None:
        """The live session a cookie stands for; None for a forged, ended or expired one."""
        secret, _, signature = cookie.partition(".")
        if not secret or not self.ctx.signer.verify(COOKIE_PURPOSE, secret, signature):
            return None
        found = await self.ctx.store.credential_by_hash(secret_hash(secret), now=self.ctx.clock())
        return found if found is not None and found.kind is CredentialKind.SESSION else None

    async def end_session(self, session: WebCredential) -> None:
        await self.ctx.store.delete_credential(session.id, user_id=session.user_id)

    # Personal API tokens --------------------------------------------------------------------

    async def create_token(self, user_id: str, name: str) -> Issued:
        name = " ".join(name.split())
        if not name:
            raise ValidationError("Give the token a name (what it is for), e.g. “grafana”.", field="name")
        if len(name) > MAX_TOKEN_NAME or not name.isprintable():
            raise ValidationError(f"A token's name is at most {MAX_TOKEN_NAME} printable characters.", field="name")
        if len(await self.tokens_of(user_id)) >= MAX_TOKENS_PER_USER:
            raise ValidationError(f"You have {MAX_TOKENS_PER_USER} tokens already: revoke one you no longer use "
                                  "first.", field="name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        credential = WebCredential(id=new_id(), token_hash=secret_hash(secret), kind=CredentialKind.API_TOKEN,
                                   user_id=user_id, name=name, created_at=self.ctx.clock())
        await self.ctx.store.add_credential(credential)
        return Issued(secret, credential)

    async def tokens_of(self, user_id: str) -> list[WebCredential]:
        return await self.ctx.store.credentials_of(user_id, CredentialKind.API_TOKEN)

    async def revoke_token(self, user_id: str, token_id: str) -> bool:
        """Revoke one of the user's API tokens; False if the user has no API token with that id (someone
        else's token, or one of the user's sessions, is left alone)."""
        if not any(token.id == token_id for token in await self.tokens_of(user_id)):
            return False
        return await self.ctx.store.delete_credential(token_id, user_id=user_id)

    async def token(self, secret: str) -> WebCredential | None:
        """The API token a bearer secret stands for; None for an unknown or revoked one."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        found = await self.ctx.store.credential_by_hash(secret_hash(secret), now=self.ctx.clock())
        return found if found is not None and found.kind is CredentialKind.API_TOKEN else None

    async def prune(self) -> int:
        """Forget expired sessions (run now and then by the bot)."""
        return await self.ctx.store.prune_credentials(self.ctx.clock())
