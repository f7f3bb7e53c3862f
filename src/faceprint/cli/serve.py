"""``faceprint serve`` (the REST service and web page) and ``faceprint keys create | list | revoke``."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigurationError, ServiceError

if TYPE_CHECKING:
    from ..service.settings import ServiceSettings

log = logging.getLogger(__name__)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where API keys, galleries and the audit log live "
        "(default: $FACEPRINT_DATA_DIR or ~/.local/share/faceprint).",
    ),
]

QualityOpt = Annotated[
    str | None,
    typer.Option(
        "--quality",
        help="Assess every face's quality with this assessor (fiqa-fast: a few ms per face; fiqa) and return "
        "it in the responses; templates store it. Default: $FACEPRINT_QUALITY, else off.",
    ),
]
MinQualityOpt = Annotated[
    float | None,
    typer.Option(
        "--min-quality",
        help="With --quality: refuse to enrol faces below this (0-100) and flag such probes. "
        "Default: $FACEPRINT_MIN_QUALITY.",
    ),
]

keys_app = typer.Typer(
    help="Manage the service's API keys (stored as salted scrypt hashes in DATA_DIR/keys.sqlite).",
    no_args_is_help=True,
)


def _settings(data_dir: Path | None, **overrides: Any) -> ServiceSettings:
    from ..service.settings import ServiceSettings  # imported lazily: `faceprint --help` stays fast

    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return ServiceSettings.from_env(None, **overrides)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once (and let go) so that a busy port or an unknown host is one clear
    error before the models load, not a log line from the server."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: unknown host ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind. Loopback by default; anything else is reachable from the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    data_dir: DataDirOpt = None,
    workers: Annotated[int, typer.Option(help="Inference worker processes (0: one per core).", min=0)] = 0,
    quality: QualityOpt = None,
    min_quality: MinQualityOpt = None,
    print_openapi: Annotated[
        bool,
        typer.Option("--print-openapi", help="Print the OpenAPI document and exit (regenerates service/openapi.json)."),
    ] = False,
) -> None:
    """Serve the REST API (/v1/...), /healthz, /readyz, /metrics and the web page at /.

    Settings beyond these options come from FACEPRINT_* environment variables (e.g.
    FACEPRINT_MAX_PIXELS, FACEPRINT_RATE_LIMIT_PER_S, FACEPRINT_TEMPLATE_KEY).
    Behind a reverse proxy on this machine, client addresses come from X-Forwarded-For
    (other proxies: uvicorn's FORWARDED_ALLOW_IPS).
    """
    if print_openapi:
        from ..service.app import openapi_json

        sys.stdout.write(openapi_json())
        return
    import uvicorn

    from ..service.app import create_app, prepare

    given = {"workers": workers or None, "quality": quality, "min_quality": min_quality}
    settings = _settings(data_dir, **{k: v for k, v in given.items() if v is not None})
    had_keys = settings.keys_db.exists()
    app = create_app(settings)  # checks the data folder and opens the key store (exit 7 if damaged)
    _check_can_listen(host, port)
    if not _is_loopback(host):
        banner = (
            f"WARNING: binding {host}:{port} makes the face recognition service reachable from the network. "
            "It speaks plain HTTP: put a TLS-terminating reverse proxy in front of it, keep API keys secret, "
            "and give clients the least role they need (`faceprint keys create --role recognize`)."
        )
        log.warning(banner)
        typer.secho(banner, err=True, fg=typer.colors.RED, bold=True)
    if not had_keys:
        typer.echo(
            f"note: no API keys yet in {settings.data_dir}; create one with "
            f"`faceprint keys create --role admin --data-dir {settings.data_dir}`",
            err=True,
        )
    prepare(app)  # galleries and model workers before listening: a locked store or missing model ends here
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
        log_level="info",  # uvicorn's own loggers; faceprint's follow -v
        access_log=True,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind after all (it logged why)
        if not server.started:
            raise ServiceError(f"the server could not start on {host}:{port} (see the log above)") from exc
        raise
    if not server.started:
        raise ServiceError(f"the server could not start on {host}:{port} (see the log above)")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, enroll or recognize.")],
    gallery: Annotated[str | None, typer.Option(help="Limit the key to this gallery.")] = None,
    label: Annotated[str, typer.Option(help="A note to recognise the key by (who or what uses it).")] = "",
    data_dir: DataDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Create an API key and print it once (it cannot be shown again: only its hash is kept)."""
    from ..service.audit import AuditLog
    from ..service.auth import KeyStore

    s = _settings(data_dir)
    record, token = KeyStore(s.keys_db).create(role, gallery=gallery, label=label)
    AuditLog(s.audit_log).record(
        "key_create", key_id=record.id, gallery=gallery, role=record.role.value, actor="cli", label=label or None
    )
    if json_out:
        typer.echo(json.dumps({**record.to_dict(), "key": token}))
    else:
        typer.echo(token)
        scope = f"gallery {gallery!r}" if gallery else "all galleries"
        typer.echo(
            f"created {record.role.value} key {record.id} for {scope}; store it now, it is not shown again", err=True
        )


@keys_app.command("list")
def keys_list(
    data_dir: DataDirOpt = None,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """List API keys (ids, roles, scopes, dates; never secrets)."""
    from ..service.auth import KeyStore

    s = _settings(data_dir)
    keys = KeyStore(s.keys_db).list(include_revoked=not active)
    if json_out:
        typer.echo(json.dumps([k.to_dict() for k in keys]))
        return
    for k in keys:
        status = f"revoked {k.revoked_at}" if k.revoked else "active"
        typer.echo(f"{k.id}  {k.role.value:<9}  {k.gallery or '*':<16}  {k.created_at}  {status}  {k.label}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the part after fp_, as `keys list` shows).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API key: the service refuses it (401) from its next request on."""
    from ..service.audit import AuditLog
    from ..service.auth import KeyStore

    s = _settings(data_dir)
    record = KeyStore(s.keys_db).revoke(key_id)
    AuditLog(s.audit_log).record("key_revoke", key_id=record.id, gallery=record.gallery, actor="cli")
    typer.echo(f"revoked key {record.id}", err=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
