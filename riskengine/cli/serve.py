"""``riskengine serve``: the HTTP scoring service (docs/service.md)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import click

from riskengine.cli.common import user_error

__all__ = ["serve"]


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@click.command()
@click.option(
    "--bundle",
    "bundle_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The signed bundle to score with; watched: a new file that verifies is swapped in.",
)
@click.option(
    "--public-key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The bundle's public key file (KEYFILE.pub).",
)
@click.option(
    "--db", "url", required=True, metavar="URL", help="The store: history and the decision log."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 256),
    help="Worker processes (each scores on its own core).",
)  # fmt: skip
@click.option(
    "--spool",
    default="riskengine-spool",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of the decision log's spool files (one per worker).",
)
@click.option(
    "--random-config",
    type=click.Path(exists=True, dir_okay=False),
    help="Minimum random inspection rates per office and regime (TOML, [random]).",
)
@click.option(
    "--random-key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="The random selection's secret key (default: $RISKENGINE_RANDOM_KEY_FILE, …).",
)
@click.option("--lanes", type=click.Path(exists=True, dir_okay=False), help="Lane TOML file.")
@click.option(
    "--max-body",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    metavar="BYTES",
    help="The largest request body; a larger one gets 413.",
)
@click.option(
    "--log-ack",
    type=click.Choice(["request", "background"]),
    default="background",
    show_default=True,
    help="background: answered at once, the decision written off the request path within "
    "--log-interval; request: each decision is in the store or the fsync'd spool before it is "
    "answered (a store commit per request: slower).",
)
@click.option(
    "--log-interval", default=0.2, show_default=True, type=click.FloatRange(0.001),
    help="Seconds a decision waits at most for its batch to be written.",
)  # fmt: skip
@click.option(
    "--watch-interval", default=1.0, show_default=True, type=click.FloatRange(0.05),
    help="Seconds between looks at the bundle file.",
)  # fmt: skip
@click.option(
    "--preload-history",
    is_flag=True,
    help="Read the history of every subject of the bundle's profiles at start and after a swap "
    "(memory for speed: no request waits for a first lookup).",
)
@click.option(
    "--freeze-heap/--no-freeze-heap",
    default=True,
    show_default=True,
    help="Move the loaded bundle out of the garbage collector's way (gc.freeze; thawed and "
    "collected once after each swap).",
)
@click.option(
    "--batch-threads", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Batches a worker scores at once; more wait their turn (use --workers for more cores).",
)  # fmt: skip
@click.option(
    "--graceful-timeout", default=30, show_default=True, type=click.IntRange(0),
    help="Seconds a shutdown (SIGTERM, SIGINT) waits for requests in flight.",
)  # fmt: skip
def serve(
    bundle_path: str,
    public_key: str,
    url: str,
    host: str,
    port: int,
    workers: int,
    spool: str,
    random_config: str | None,
    random_key_file: str | None,
    lanes: str | None,
    max_body: int,
    log_ack: str,
    log_interval: float,
    watch_interval: float,
    preload_history: bool,
    freeze_heap: bool,
    batch_threads: int,
    graceful_timeout: int,
) -> None:
    """Serve scoring over HTTP: POST /v1/score (one declaration), POST /v1/score/batch (a JSON
    array, or JSON Lines as application/x-ndjson), GET /v1/bundle, /healthz, /metrics
    (Prometheus), /openapi.json.

    History comes from the store at --db and every decision is recorded in its decision log
    (spooled under --spool while the store is away, replayed when it is back). A new --bundle
    file (or SIGHUP) is swapped in once its signature and hashes verify; a bad one is refused
    and the old one keeps serving. SIGTERM drains the requests in flight, then flushes the
    decision log. See docs/service.md.
    """
    import uvicorn

    from riskengine.bundle import read_bundle
    from riskengine.evaluator import LaneConfig, RandomSelection, RandomSelectionError
    from riskengine.service.config import CONFIG_ENV, ServiceConfig
    from riskengine.service.metrics import MULTIPROC_ENV
    from riskengine.store.access import open_existing

    # everything that can be wrong is said here, before a worker starts
    if random_config is not None:
        try:
            RandomSelection.from_toml(random_config, key_file=random_key_file)
        except RandomSelectionError as exc:
            raise click.BadParameter(str(exc), param_hint="'--random-config'") from None
    elif random_key_file is not None:
        raise click.UsageError("--random-key-file needs --random-config")
    if lanes is not None:
        LaneConfig.from_toml(lanes)
    manifest = read_bundle(bundle_path, public_key).manifest
    open_existing(url).dispose()
    config = ServiceConfig(
        bundle=str(Path(bundle_path).resolve()),
        public_key=str(Path(public_key).resolve()),
        db=url,
        spool=str(Path(spool).resolve()),
        random_config=random_config,
        random_key_file=random_key_file,
        lanes=lanes,
        max_body=max_body,
        log_ack="background" if log_ack == "background" else "request",
        log_interval=log_interval,
        watch_interval=watch_interval,
        workers=workers,
        preload_history=preload_history,
        freeze_heap=freeze_heap,
        batch_threads=batch_threads,
    )
    os.environ[CONFIG_ENV] = config.to_env()
    made: str | None = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        made = tempfile.mkdtemp(prefix="riskengine-metrics-")
        os.environ[MULTIPROC_ENV] = made
    click.echo(
        f"serving bundle revision {manifest.revision} ({len(manifest.editions)} editions, as of "
        f"{manifest.as_of}) on http://{host}:{port} with {workers} worker"
        f"{'' if workers == 1 else 's'}",
        err=True,
    )
    # uvicorn drains, then raises the signal that stopped it again with the handlers it found:
    # a drained shutdown ends with status 0 (as gunicorn's does), not "killed by SIGTERM"
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    try:
        uvicorn.run(
            "riskengine.service.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout,
            server_header=False,
        )
    except SystemExit as exc:  # uvicorn exits 3 when a worker cannot start (a port in use)
        if exc.code not in (0, None):
            user_error("the service could not start (see the messages above)")
            raise SystemExit(1) from None  # the status of every other error (docs/cli.md)
        raise
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
