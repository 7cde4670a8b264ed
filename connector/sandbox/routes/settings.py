"""App settings: the eventDetailsUrl HubSpot calls for unknown events (reference §3.13).

Settings belong to an app, not an account: they live in the default account's store whichever
account the caller's token addresses."""

from __future__ import annotations

from starlette.responses import Response

from connector.sandbox.directory import AnyApp
from connector.sandbox.errors import SandboxHTTPError, not_found, validation
from connector.sandbox.pipeline import Ctx, ok


def _target(ctx: Ctx) -> AnyApp:
    raw = ctx.path("appId")
    try:
        app_id = int(raw)
    except ValueError as exc:
        raise validation(f"appId must be an integer, got {raw!r}", field="appId") from exc
    if not -(2**31) <= app_id <= 2**31 - 1:
        raise validation("appId is out of the int32 range", field="appId")
    target = ctx.sandbox.config.any_app_by_id(app_id)
    if target is None:
        raise not_found(f"App {app_id} not found")
    if target.app_id != ctx.app.app_id:
        raise SandboxHTTPError(
            403, "FORBIDDEN", f"These credentials cannot manage the settings of app {app_id}"
        )
    return target


async def get_settings(ctx: Ctx) -> Response:
    """#35 GET /{appId}/settings -> EventDetailSettings (404 when never set)."""
    app = _target(ctx)
    url = ctx.sandbox.store.settings.get(app.app_id)
    if url is None:
        raise not_found(f"No event details settings for app {app.app_id}")
    return ok({"appId": app.app_id, "eventDetailsUrl": url})


async def update_settings(ctx: Ctx) -> Response:
    """#36 POST /{appId}/settings {eventDetailsUrl} -> EventDetailSettings."""
    app = _target(ctx)
    body = await ctx.json_object()
    url = body.get("eventDetailsUrl")
    if not isinstance(url, str):
        raise validation("eventDetailsUrl is required", field="eventDetailsUrl")
    if "%s" not in url:
        raise validation("eventDetailsUrl must contain %s", field="eventDetailsUrl")
    schemes = (
        ("https://", "http://") if ctx.sandbox.config.allow_insecure_callbacks else ("https://",)
    )
    if not url.startswith(schemes) or len(url.split("://", 1)[1].split("/", 1)[0]) == 0:
        raise validation(
            "eventDetailsUrl must be a full https:// URL including the host",
            field="eventDetailsUrl",
        )
    ctx.sandbox.store.set_event_details_url(app.app_id, url)
    return ok({"appId": app.app_id, "eventDetailsUrl": url})
