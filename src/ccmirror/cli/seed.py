"""`ccmirror seed` and `ccmirror export-torrents`."""

from __future__ import annotations

import json
import signal
from typing import Any

import click

from ccmirror.cli.common import (
    SIZE,
    emit,
    fail,
    format_table,
    manifest_argument,
    mirror_for,
    output_options,
    settings,
)
from ccmirror.sizes import format_size


def _status_text(s: dict[str, Any], verbose: bool) -> str:
    states = ", ".join(f"{n} {state}" for state, n in sorted(s["states"].items())) or "no packs"
    head = (
        f"{s['time']} {s['event']}: {s['torrents']} torrents ({states}), "
        f"{s['peers']} peers, uploaded {format_size(s['uploaded'])}, "
        f"{format_size(s['upload_rate'])}/s, port {s['listen_port']}"
    )
    if s["failed"]:
        head += f", {s['failed']} cannot be seeded"
    lines = [head]
    for p in s["packs"]:
        if verbose or p["state"] != "seeding" or p["peers"]:
            lines.append(
                f"  {p['name']}  {p['state']}  {p['progress'] * 100:.1f}%  "
                f"{p['peers']} peers  uploaded {format_size(p['uploaded'])}"
                + (f"  {p['error']}" if p.get("error") else "")
            )
    for f in s["failures"] if s["event"] != "status" else ():
        lines.append(f"  {f['name']}  cannot be seeded: {f['error']}")
    return "\n".join(lines)


@click.command()
@manifest_argument
@click.option(
    "--interface",
    "interfaces",
    multiple=True,
    metavar="IP",
    help="Listen on this address (repeatable; default 0.0.0.0 and [::]).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=6881,
    show_default=True,
    help="Listen port for peers (0: any free port).",
)
@click.option("--dht/--no-dht", default=True, show_default=True, help="Distributed hash table.")
@click.option("--lsd/--no-lsd", default=False, show_default=True, help="Local service discovery.")
@click.option("--upnp/--no-upnp", default=False, show_default=True, help="UPnP port mapping.")
@click.option(
    "--natpmp/--no-natpmp", default=False, show_default=True, help="NAT-PMP port mapping."
)
@click.option(
    "--upload-limit",
    type=SIZE,
    metavar="SIZE",
    help="Upload rate limit per second, e.g. 10MiB (default: unlimited).",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Print a status line this often.",
)
@click.option(
    "--rescan-interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Look for newly sealed or obsolete packs this often.",
)
@click.option(
    "--resume-interval",
    type=click.FloatRange(min=1),
    default=900.0,
    show_default=True,
    metavar="SECONDS",
    help="Save resume data of changed torrents this often (and always on exit).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop after this long (default: run until SIGTERM or Ctrl-C).",
)
@output_options(json_help="Print one JSON object per status line (JSON lines), not one document.")
def seed(
    manifest: str,
    interfaces: tuple[str, ...],
    port: int,
    dht: bool,
    lsd: bool,
    upnp: bool,
    natpmp: bool,
    upload_limit: int | None,
    status_interval: float,
    rescan_interval: float,
    resume_interval: float,
    duration: float | None,
) -> None:
    """Seed every sealed pack from <data_dir>/packs until stopped.

    Resume data goes to <data_dir>/seed/, so a restart does not hash the packs again;
    packs sealed by a later 'sync' are picked up without a restart, obsolete ones are
    dropped. It never takes the data dir's write lock: run 'sync' from cron beside it.
    SIGTERM or Ctrl-C stops it cleanly (resume data saved, exit 0).

    With --json it prints one JSON object per status line (JSON lines), not one
    document: "event" is "started", "status" or "stopped".

    \b
    Example:
      ccmirror seed manifests/netlabels.toml --port 51413 --upload-limit 20MiB
    """
    from ccmirror.cli import Terminated
    from ccmirror.seed import SeedOptions
    from ccmirror.seed import seed as run_seed

    s = settings()
    options = SeedOptions(
        interfaces=interfaces or SeedOptions.interfaces,
        port=port,
        dht=dht,
        lsd=lsd,
        upnp=upnp,
        natpmp=natpmp,
        upload_rate_limit=upload_limit or 0,
        status_interval=status_interval,
        rescan_interval=rescan_interval,
        resume_interval=resume_interval,
        duration=duration,
    )
    stop: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if stop:  # a second signal: stop waiting for resume data
            raise Terminated(signum)
        stop.append(signum)

    def on_status(status: dict[str, Any]) -> None:
        if s.json:
            click.echo(json.dumps(status, ensure_ascii=False), nl=True)
        elif not s.quiet:
            click.echo(_status_text(status, s.verbose))

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with mirror_for(manifest, write=False) as mirror:
            final = run_seed(
                mirror, options=options, should_stop=lambda: bool(stop), on_status=on_status
            )
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    s.result = final
    if final["failed"]:
        raise fail(f"seed: {final['failed']} torrents could not be seeded (see above)", 1)


def _export_table(r: dict[str, Any]) -> str:
    rows = [(t["name"], t["status"], t.get("error", "")) for t in r["torrents"]]
    table = format_table(("pack", "status", "note"), rows) if rows else "No sealed packs yet."
    return (
        f"{table}\n\n{r['exported']} exported, {r['unchanged']} unchanged, "
        f"{r['conflicts']} conflicts, {r['missing']} missing -> {r['to']}\n"
        f"Set the client's save path to {r['save_path']}"
    )


@click.command("export-torrents")
@manifest_argument
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(file_okay=False),
    metavar="WATCH_DIR",
    help="Folder to copy the .torrent files into (a client's watch folder).",
)
@output_options
def export_torrents(manifest: str, to: str) -> None:
    """Copy every sealed pack's .torrent into a watch folder, for seeding with your own client.

    Set the client's save path (download folder) to <data_dir>/packs so it finds the
    payload in place. Copies are atomic; an existing different file is never
    overwritten (reported as a conflict, exit 1); running it again copies only new packs.

    \b
    Example:
      ccmirror export-torrents manifests/netlabels.toml --to ~/watch
    """
    from ccmirror.seed import export_torrents as run_export

    with mirror_for(manifest, write=False) as mirror:
        emit(run_export(mirror, to), _export_table)


COMMANDS = [seed, export_torrents]
