"""Personal API tokens (issue 19): the Tokens page — list, create (the secret shown once), revoke — and
``GET /api/v1/me``, the smallest API route, which answers who a token or session belongs to.

Everything is the signed-in person's own: the store is asked for their tokens only, and revoking
someone else's token id answers 404 like a missing one (services/webauth.py ``revoke_token``).
Every form carries the CSRF token (backstage/app.py checks it with the Origin).
"""

from __future__ import annotations

from aiohttp import web

from backstage.app import Backstage, see_other, viewer
from domain.errors import NotFound, ValidationError
from gateway.cards import format_time
from gateway.ids import API_PREFIX, BACKSTAGE_PREFIX
from services.webauth import MAX_TOKEN_NAME, Issued

PAGE = "/tokens"


def setup(backstage: Backstage) -> None:
    backstage.templates.filters["token_time"] = format_time
    backstage.nav.append(("Tokens", PAGE))

    async def page(request: web.Request, *, created: Issued | None = None, problem: str = "", name_value: str = "",
                   status: int = 200) -> web.Response:
        who = viewer(request)
        tokens = sorted(await backstage.auth.tokens_of(who.user_id), key=lambda t: (-t.created_at, t.id))
        return backstage.render(request, "tokens.html", status=status, title="API tokens", tokens=tokens,
                                created=created, problem=problem, name_value=name_value,
                                revoked=request.query.get("revoked") == "1", max_name=MAX_TOKEN_NAME,
                                api_url=backstage.base_url + API_PREFIX)

    async def list_tokens(request: web.Request) -> web.Response:
        return await page(request)

    async def create(request: web.Request) -> web.Response:
        form = await request.post()
        name = form.get("name")
        typed = name if isinstance(name, str) else ""
        try:
            issued = await backstage.auth.create_token(viewer(request).user_id, typed)
        except ValidationError as error:
            return await page(request, problem=str(error), name_value=typed[:MAX_TOKEN_NAME * 2], status=400)
        return await page(request, created=issued, status=201)

    async def revoke(request: web.Request) -> web.Response:
        token_id = request.match_info["token_id"]
        if not await backstage.auth.revoke_token(viewer(request).user_id, token_id):
            raise NotFound("You have no token with that id: it may have been revoked already.")
        return see_other(f"{BACKSTAGE_PREFIX}{PAGE}?revoked=1")

    async def me(request: web.Request) -> web.Response:
        who = viewer(request)
        return web.json_response({"user_id": who.user_id, "username": who.username,
                                  "signed_in_with": "token" if who.by_token else "session"})

    backstage.page("GET", PAGE, list_tokens)
    backstage.page("POST", PAGE, create)
    backstage.page("POST", PAGE + "/{token_id}/revoke", revoke)
    backstage.api("GET", "/me", me)
