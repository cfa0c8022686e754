"""The `ecarto` command: `ingest` publishes a data version, `serve` runs it under granian, `seed` tiles it."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ingest.manifest import default_manifest_path
from tileserver.core.errors import ConfigError, EcartoError
from tileserver.core.settings import Settings

if TYPE_CHECKING:
    from ingest.manifest import Manifest
    from tileserver.core.store import Store

log = logging.getLogger("ecarto")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Every --help shows each option's default, except for flags and options with none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a known error prints one clear line and exits 1, never a traceback."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if not args.quiet else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    try:
        return args.run(args)
    except EcartoError as exc:
        print(f"ecarto {args.command}: error: {exc.description}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ecarto {args.command}: interrupted; the previous data version is still served",
              file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecarto", description=__doc__, formatter_class=DefaultsHelp)
    database = os.environ.get("ECARTO_DATABASE", Settings.database)
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="download, check and publish a new data version",
                                 formatter_class=DefaultsHelp)
    ingest.add_argument("--sources", type=Path, default=default_manifest_path(),
                        help="sources manifest (TOML); the default is the official sources")
    ingest.add_argument("--mirror", default=os.environ.get("ECARTO_MIRROR"),
                        help="fetch https://HOST/PATH from MIRROR/HOST/PATH instead (or ECARTO_MIRROR)")
    ingest.add_argument("--database", default=database, help="a .gpkg path or a postgresql:// URL (ECARTO_DATABASE)")
    ingest.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("ECARTO_CACHE_DIR", "var/cache")),
                        help="where downloads are kept (ECARTO_CACHE_DIR)")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bars")
    ingest.add_argument("--allow-partial", action="store_true",
                        help="publish even when a main indicator is lost (the version says `partial`)")
    ingest.add_argument("--if-changed", action="store_true",
                        help="do nothing when the published version was made from these very sources and code")
    ingest.set_defaults(run=_ingest)

    sources = commands.add_parser("sources", help="the sources manifest", formatter_class=DefaultsHelp)
    check = sources.add_subparsers(dest="action", required=True).add_parser(
        "check", help="fetch the head of every source and check the columns the manifest needs",
        formatter_class=DefaultsHelp)
    check.add_argument("--sources", type=Path, default=default_manifest_path(),
                       help="sources manifest (TOML); the default is the official sources")
    check.add_argument("--mirror", default=os.environ.get("ECARTO_MIRROR"),
                       help="fetch https://HOST/PATH from MIRROR/HOST/PATH instead (or ECARTO_MIRROR)")
    check.set_defaults(run=_check)

    serve = commands.add_parser("serve", help="serve tiles and features with granian (or gunicorn)",
                                formatter_class=DefaultsHelp)
    serve.add_argument("--database", default=database, help="a .gpkg path or a postgresql:// URL (ECARTO_DATABASE)")
    serve.add_argument("--bind", default=f"127.0.0.1:{os.environ.get('PORT', '8000')}",
                       help="HOST:PORT to listen on (the port from PORT when set)")
    serve.add_argument("--server", choices=SERVERS, default="granian",
                       help="the HTTP server running the app (docs/scaling.md compares them)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")),
                       help="worker processes (WEB_CONCURRENCY when set)")
    serve.add_argument("--threads", type=int, default=4,
                       help="threads running requests in each worker (granian's --blocking-threads)")
    serve.set_defaults(run=_serve)

    seed = commands.add_parser("seed", help="write the vector tiles of the current version to a PMTiles archive"
                               " or a {z}/{x}/{y}.mvt folder", formatter_class=DefaultsHelp)
    seed.add_argument("--output", type=Path, required=True, help="the .pmtiles file (or folder) to write")
    seed.add_argument("--format", choices=["pmtiles", "dir"], default="pmtiles",
                      help="pmtiles: one archive of gzipped tiles; dir: plain {z}/{x}/{y}.mvt files")
    seed.add_argument("--database", default=database, help="a .gpkg path or a postgresql:// URL (ECARTO_DATABASE)")
    seed.add_argument("--layers", help="comma list of collections, all in each tile (default: all)")
    seed.add_argument("--minzoom", type=int, help="first zoom (default: the lowest of the layers)")
    seed.add_argument("--maxzoom", type=int, help="last zoom (default: the highest of the layers)")
    seed.add_argument("--jobs", type=int, help="processes making tiles (default: one per CPU)")
    seed.add_argument("--no-progress", action="store_true", help="no progress bar")
    seed.set_defaults(run=_seed)

    warm = commands.add_parser("warm", help="make the current version's hot set into the shared cache (Redis)",
                               description="What a server does when a version lands, and `ecarto ingest` once "
                               "it published (docs/scaling.md): run it on a version's file before it is copied "
                               "onto the servers' one, so that they find it warm.", formatter_class=DefaultsHelp)
    warm.add_argument("--database", default=database, help="a .gpkg path or a postgresql:// URL (ECARTO_DATABASE)")
    warm.add_argument("--version", help="warm only if this is the current version (default: whatever is current)")
    warm.add_argument("--previous", default="", help="the version whose most requested tiles join the hot set")
    warm.add_argument("--nice", type=int, default=0, help="run at this niceness (the servers start it at 10)")
    warm.add_argument("--locked", action="store_true",
                      help="the caller holds the warm-up's lock in Redis (the servers do; by hand, leave it out)")
    warm.set_defaults(run=_warm)
    return parser


def _ingest(args: argparse.Namespace) -> int:
    from ingest.job import run
    from ingest.manifest import load_manifest
    from tileserver.core.stores import open_store

    settings = Settings.from_env(database=args.database)
    manifest = load_manifest(args.sources)
    store = open_store(settings.database, settings)
    try:
        if args.if_changed and (same := _same_sources(store, manifest)):
            print(f"{settings.database} already holds version {same} of {manifest.origin}: nothing to ingest")
            return 0
        version, report = run(manifest, store, cache_dir=args.cache_dir, mirror=args.mirror,
                              progress=not args.no_progress, allow_partial=args.allow_partial)
        print(report.summary())
        partial = " (PARTIAL: some indicators are missing)" if report.partial else ""
        print(f"published version {version.id} to {settings.database}{partial}")
        if settings.redis_url:  # the servers' warm-up, done here before they look (docs/scaling.md)
            previous = next((v.id for v in store.versions() if v.id != version.id), "")  # newest first
            try:
                _say_warmed(settings, store, previous=previous, version=version.id)
            except EcartoError as error:  # published all the same: the servers warm it themselves
                print(f"ecarto ingest: warning: no warm-up: {error.description}", file=sys.stderr)
    finally:
        store.close()
    return 0


def _same_sources(store: Store, manifest: Manifest) -> str | None:
    """The id of the served version if an ingest of `manifest` made it, with today's ingest code."""
    from ingest.manifest import fingerprint

    served = store.current()
    if served is not None and served.version.report.get("fingerprint") == fingerprint(manifest):
        return served.version.id
    return None


def _check(args: argparse.Namespace) -> int:
    from ingest.check import check_sources
    from ingest.manifest import load_manifest

    results = check_sources(load_manifest(args.sources), mirror=args.mirror)
    for result in results:
        print(result.summary())
    failing = [r.name for r in results if r.fatal]
    if failing:
        print(f"ecarto sources check: an ingest would fail or lose a main indicator: {', '.join(failing)}",
              file=sys.stderr)
    return 1 if failing else 0


def _seed(args: argparse.Namespace) -> int:
    from tileserver.core.seed import Format, seed
    from tileserver.core.stores import open_store

    settings = Settings.from_env(database=args.database)
    layers = args.layers.split(",") if args.layers else None
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: at least one process makes the tiles")
    report = seed(partial(open_store, settings.database, settings), args.output, layers=layers,
                  minzoom=args.minzoom, maxzoom=args.maxzoom, jobs=args.jobs,
                  output_format=Format(args.format), progress=not (args.no_progress or args.quiet))
    print(report.summary())
    return 0


def _warm(args: argparse.Namespace) -> int:
    from tileserver.core.priority import lower_priority

    lower_priority(args.nice)  # before the imports, which take seconds of processor
    from tileserver.core.stores import open_store

    settings = Settings.from_env(database=args.database)
    store = open_store(settings.database, settings)
    try:
        _say_warmed(settings, store, previous=args.previous, version=args.version, locked=args.locked)
    finally:
        store.close()
    return 0


def _say_warmed(settings: Settings, store: Store, *, previous: str, version: str | None = None,
                locked: bool = False) -> None:
    """Warm the current version into the shared cache (`warm.warm_published`) and say what came of it."""
    from tileserver.web.warm import warm_published

    warmed, made = warm_published(store, settings, previous=previous, version=version, locked=locked)
    if warmed is None:
        print(f"{settings.database}: version {version or 'none'} is not the current one; nothing to warm")
    elif made is None:
        print(f"another warm-up of {warmed} holds the lock; nothing to do")
    else:
        print(f"warmed {warmed}: {made} tiles in the shared cache")


def _serve(args: argparse.Namespace) -> NoReturn:
    settings = Settings.from_env(database=args.database)  # validates before the server starts
    host, port = check_free(args.bind)
    os.environ["ECARTO_DATABASE"] = settings.database
    command = SERVERS[args.server](host, port, args.workers, args.threads)
    # gunicorn's own "Listening at:" line is empty with --reuse-port (each worker binds its own socket
    # after the fork): this line says where the server listens.
    print(f"serving {settings.database} with {args.server} on http://{args.bind}/ ({args.workers} workers)",
          file=sys.stderr)
    os.execv(sys.executable, command)


def _granian(host: str, port: int, workers: int, threads: int) -> list[str]:
    """The Procfile's granian options (docs/scaling.md says why), plus an access log on the terminal."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory",
            "tileserver.web.app:create_app", "--host", host, "--port", str(port), "--workers", str(workers),
            "--blocking-threads", str(threads), "--respawn-failed-workers", "--respawn-interval", "15",
            "--workers-kill-timeout", "30", "--access-log"]


def _gunicorn(host: str, port: int, workers: int, threads: int) -> list[str]:
    """The Procfile's gunicorn options (docs/scaling.md says why), plus an access log on the terminal."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers), "--threads", str(threads),
            "--reuse-port", "--limit-request-line", "0", "--access-logfile", "-", "tileserver.web.app:create_app()"]


SERVERS = {"granian": _granian, "gunicorn": _gunicorn}


def check_free(bind: str) -> tuple[str, int]:
    """Refuse an address another server listens on (gunicorn's `--reuse-port` would share it); its host and port.

    Two servers sharing a port answer requests in turn, perhaps from two different databases: a
    second `ecarto serve` on a laptop must fail as it would without the option.
    """
    host, _, port = bind.rpartition(":")
    try:
        address = socket.getaddrinfo(host.strip("[]") or "0.0.0.0", int(port), type=socket.SOCK_STREAM)[0]
    except (ValueError, socket.gaierror) as error:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT ({error})") from error
    with socket.socket(address[0], socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        try:
            probe.bind(address[4])
        except OSError as error:
            raise ConfigError(f"cannot listen on {bind}: {error.strerror}") from error
    return host.strip("[]") or "0.0.0.0", int(port)


if __name__ == "__main__":
    sys.exit(main())
