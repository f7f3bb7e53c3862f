"""Property-based API tests from the OpenAPI spec (schemathesis): no input makes the service 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from .conftest import make_keys  # noqa: E402

pytestmark = pytest.mark.service

_ADMIN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, pipeline: Any) -> Iterator[Any]:
    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    data_dir = Path(tmp_path_factory.mktemp("schemathesis"))
    s = ServiceSettings(data_dir=data_dir, rate_limit_per_s=1000, rate_limit_burst=1000, inference_timeout_s=60)
    _ADMIN["token"] = make_keys(s.keys_db).admin
    app = create_app(s, pipelines=[pipeline])
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    try:  # schemathesis keeps an app's lifespan running until exit; end ours with the module
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()
    except ImportError:  # pragma: no cover - another schemathesis layout
        pass


def test_no_request_makes_the_service_fail(api_schema: Any) -> None:
    """Every operation, a bounded number of generated requests each (schemathesis strategies run by
    hypothesis here, rather than its pytest plugin, to stay independent of pytest internals)."""
    from hypothesis import given

    headers = {"Authorization": f"Bearer {_ADMIN['token']}"}
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: Any) -> None:
            # schemathesis fills the security headers with random values: authenticate as admin
            # so the requests get past auth into the upload, image and gallery code
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")
            }
            response = case.call(headers=headers)
            ctype = response.headers.get("content-type") or [""]
            ctype = ctype[0] if isinstance(ctype, list) else ctype
            where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:400]}"
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert ctype.startswith("application/problem+json"), where
                assert {"type", "title", "status", "detail", "code"} <= set(response.json()), where

        run()
