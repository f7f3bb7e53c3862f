"""The service's shared state and the FastAPI dependencies every route uses (auth, roles, uploads)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn, TypeVar

import anyio.to_thread
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import (
    APIKeyRevokedError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from .audit import AuditLog
from .auth import MALFORMED_KEY, APIKey, Authenticator, KeyStore, Role, parse_token
from .inference import InferencePool
from .metrics import Metrics
from .settings import ServiceSettings
from .uploads import Form, read_form

__all__ = [
    "ServiceState",
    "get_state",
    "client_address",
    "audit",
    "authenticated_key",
    "check_access",
    "require",
    "upload_form",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer fp_<id>_<secret>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: fp_<id>_<secret>`")


@dataclass
class ServiceState:
    """Everything one app instance owns. Built by the app factory; models load in the lifespan."""

    settings: ServiceSettings
    metrics: Metrics
    keys: KeyStore
    auth: Authenticator
    audit: AuditLog
    pool: InferencePool | None = None
    galleries: Any = None  # the gallery store, when faceprint.gallery is available
    gallery_error: str | None = None
    ready: bool = False
    draining: bool = False
    writes_in_flight: int = 0
    writes_idle: asyncio.Event = field(default_factory=asyncio.Event)

    def require_pool(self) -> InferencePool:
        if self.pool is None or not self.ready:
            raise ServiceUnavailableError("the models are still loading; try again shortly", retry_after=2)
        return self.pool

    async def guarded_write(self, work: Awaitable[T]) -> T:
        """Await ``work`` (an enrolment or deletion) to the end even if the request is cancelled:
        it runs shielded, and the lifespan's shutdown waits until no such work is in flight."""
        if self.draining:
            if asyncio.iscoroutine(work):
                work.close()
            raise ServiceUnavailableError("the service is shutting down; retry shortly", retry_after=5)
        self.writes_in_flight += 1
        self.writes_idle.clear()

        async def guarded() -> T:
            try:
                return await work
            finally:
                self.writes_in_flight -= 1
                if self.writes_in_flight == 0:
                    self.writes_idle.set()

        return await asyncio.shield(asyncio.ensure_future(guarded()))

    async def write(self, fn: Callable[[], T]) -> T:
        """Run a gallery write in a thread, guarded like :meth:`guarded_write`."""
        return await self.guarded_write(anyio.to_thread.run_sync(fn))

    async def read(self, fn: Callable[[], T]) -> T:
        """Run a quick blocking call (a gallery read, a small transaction) in a thread."""
        return await anyio.to_thread.run_sync(fn)


def get_state(request: Request) -> ServiceState:
    return request.app.state.faceprint  # type: ignore[no-any-return]


def client_address(request: Request) -> str | None:
    """The caller's address (uvicorn takes it from X-Forwarded-For only for trusted proxies)."""
    return request.client.host if request.client else None


async def audit(
    request: Request, action: str, *, key_id: str | None, gallery: str | None = None, **fields: Any
) -> None:
    """Append an audit event for this request (who, from where, which request) off the event loop."""
    state = get_state(request)
    extra = {"client": client_address(request), "request_id": request.scope.get("faceprint.request_id"), **fields}
    await anyio.to_thread.run_sync(lambda: state.audit.record(action, key_id=key_id, gallery=gallery, **extra))


async def _refuse_auth(request: Request, exc: AuthenticationError, reason: str, key_id: str | None) -> NoReturn:
    state = get_state(request)
    state.metrics.auth_failures.labels(reason).inc()
    await audit(
        request,
        "auth_refused",
        key_id=key_id,
        gallery=request.path_params.get("gallery"),
        outcome="refused",
        reason=reason,
        status=401,
        path=request.url.path,
    )
    raise exc


async def authenticated_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> APIKey:
    """The API key of the request (401 when missing or invalid; 429 over a rate or failure limit).

    Failed attempts count against the client address (and wrong secrets against the secret),
    never against the key id; every 401 is audited with the id that was presented, if any.
    """
    state = get_state(request)
    client = client_address(request)
    token = header_key or (bearer.credentials if bearer is not None else None)
    parsed = parse_token(token) if token else None
    try:
        if parsed is None:
            state.auth.refuse(client)  # a 429 once this address has failed too often
            if not token:
                raise AuthenticationError(
                    "this endpoint needs an API key: send 'Authorization: Bearer fp_<id>_<secret>' or "
                    "'X-API-Key: ...'; create one with `faceprint keys create`"
                )
            raise AuthenticationError(MALFORMED_KEY)
        assert token is not None
        auth = state.auth
        # in a thread, even the cached check: it reads the key's row (revocations apply at once),
        # and SQLite may wait on a writer's lock; the event loop must never wait on a disk
        key = await anyio.to_thread.run_sync(lambda: auth.cached(token) or auth.slow_verify(token, client))
        auth.charge(key)
    except RateLimitError:
        state.metrics.rate_limited.inc()
        raise
    except AuthenticationError as exc:
        reason = "missing" if not token else "malformed" if parsed is None else "invalid"
        if isinstance(exc, APIKeyRevokedError):
            reason = "revoked"
        await _refuse_auth(request, exc, reason, parsed[0] if parsed else None)
    request.state.api_key = key
    return key


async def check_access(request: Request, key: APIKey, role: Role, gallery: str | None = None) -> None:
    """:meth:`APIKey.check`, with every 403 written to the audit log."""
    try:
        key.check(role, gallery)
    except PermissionDeniedError as exc:
        await audit(
            request,
            "access_denied",
            key_id=key.id,
            gallery=gallery,
            outcome="refused",
            role=key.role.value,
            reason=f"needs {role.value}" if not key.allows(role) else "gallery scope",
            status=403,
            path=request.url.path,
        )
        raise exc from None


def require(role: Role, *, gallery_scoped: bool = False) -> Callable[..., Awaitable[APIKey]]:
    """A dependency: the request's key must have ``role`` (and reach the ``{gallery}`` path parameter)."""

    async def check(request: Request, key: Annotated[APIKey, Depends(authenticated_key)]) -> APIKey:
        gallery = request.path_params.get("gallery") if gallery_scoped else None
        await check_access(request, key, role, gallery)
        return key

    check.__name__ = f"require_{role.value}{'_gallery' if gallery_scoped else ''}"
    return check


async def upload_form(request: Request, max_files: int) -> Form:
    s = get_state(request).settings
    return await read_form(request, max_files=max_files, max_file_bytes=s.max_image_bytes, timeout_s=s.upload_timeout_s)
