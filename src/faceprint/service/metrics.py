"""Prometheus metrics (one registry per app, so several apps in a process never collide) and the
ASGI middleware that counts requests, times them, tags them with a request id and adds the
security headers every response carries."""

from __future__ import annotations

import re
import secrets
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "ServiceMiddleware", "SECURITY_HEADERS"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

#: Headers added to every response. The web page loads only its own script and style.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        b"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    """The service's counters and histograms in their own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "faceprint_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "faceprint_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("faceprint_http_requests_in_flight", "HTTP requests being answered", registry=r)
        self.inference = Histogram(
            "faceprint_inference_seconds",
            "Model time of one inference job (decode, detect, align, embed)",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_pending = Gauge(
            "faceprint_inference_jobs_pending", "Inference jobs queued or running", registry=r
        )
        self.faces = Counter("faceprint_faces_detected", "Faces found in uploaded images", registry=r)
        self.auth_failures = Counter(
            "faceprint_auth_failures", "Requests refused for a missing or invalid key", ["reason"], registry=r
        )
        self.rate_limited = Counter("faceprint_rate_limited", "Requests refused by a rate limit", registry=r)
        self.ready = Gauge("faceprint_ready", "1 when the models are loaded", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ServiceMiddleware:
    """Request id (``X-Request-ID``, taken from the client when well-formed), metrics, and
    security headers; ``Cache-Control: no-store`` on everything but the static page files."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID_RE.match(candidate):
                    rid = candidate
                break
        rid = rid or secrets.token_hex(8)
        scope["faceprint.request_id"] = rid
        status = 500
        static = scope.get("path", "").startswith("/static/")
        start = time.perf_counter()
        self.metrics.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                headers.append((b"x-request-id", rid.encode("ascii")))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.in_flight.dec()
            route = _route_label(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
