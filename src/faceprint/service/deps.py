"""The service's shared state and the FastAPI dependencies every route uses (auth, roles, uploads)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import AuthenticationError, RateLimitError, ServiceUnavailableError
from .audit import AuditLog
from .auth import APIKey, Authenticator, KeyStore, Role
from .inference import InferencePool
from .metrics import Metrics
from .settings import ServiceSettings
from .uploads import Form, read_form

__all__ = ["ServiceState", "get_state", "authenticated_key", "require", "upload_form"]

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


async def authenticated_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> APIKey:
    """The API key of the request (401 when missing or invalid; 429 over its rate limit)."""
    state = get_state(request)
    token = header_key or (bearer.credentials if bearer is not None else None)
    if not token:
        state.metrics.auth_failures.labels("missing").inc()
        raise AuthenticationError(
            "this endpoint needs an API key: send 'Authorization: Bearer fp_<id>_<secret>' or 'X-API-Key: ...'; "
            "create one with `faceprint keys create`"
        )
    try:
        key = state.auth.cached(token)
        if key is None:
            key = await anyio.to_thread.run_sync(state.auth.slow_verify, token)
    except AuthenticationError as exc:
        state.metrics.auth_failures.labels("revoked" if "revoked" in str(exc) else "invalid").inc()
        raise
    except RateLimitError:
        state.metrics.rate_limited.inc()
        raise
    try:
        state.auth.charge(key)
    except RateLimitError:
        state.metrics.rate_limited.inc()
        raise
    request.state.api_key = key
    return key


def require(role: Role, *, gallery_scoped: bool = False) -> Callable[..., Awaitable[APIKey]]:
    """A dependency: the request's key must have ``role`` (and reach the ``{gallery}`` path parameter)."""

    async def check(request: Request, key: Annotated[APIKey, Depends(authenticated_key)]) -> APIKey:
        gallery = request.path_params.get("gallery") if gallery_scoped else None
        key.check(role, gallery)
        return key

    check.__name__ = f"require_{role.value}{'_gallery' if gallery_scoped else ''}"
    return check


async def upload_form(request: Request, max_files: int) -> Form:
    s = get_state(request).settings
    return await read_form(request, max_files=max_files, max_file_bytes=s.max_image_bytes, timeout_s=s.upload_timeout_s)
