"""`ccmirror publish`, `search`, `withdraw`, `seed-plan`."""

from __future__ import annotations

from typing import Any

import click

from ccmirror.cli.common import (
    SIZE,
    emit,
    format_table,
    lock_option,
    manifest_argument,
    mirror_for,
    output_options,
    reporter,
)
from ccmirror.sizes import format_size


def _publish_table(r: dict[str, Any]) -> str:
    meta = r["metadata"]
    made = "new" if meta.get("created") else "unchanged"
    rows = [
        ("torrents.json", r["torrents_json"], f"{r['torrents']} torrents"),
        ("index.html", r["index_html"], f"{format_size(r['packed_bytes'])} packed"),
        ("withdrawn.json", r["withdrawn_json"], f"{r['withdrawn']} withdrawn"),
        ("metadata", meta.get("name") or "-", made),
    ]
    return format_table(("what", "where", "note"), rows)


@click.command()
@manifest_argument
@lock_option
@output_options
def publish(manifest: str) -> None:
    """Write public/: torrents.json, index.html, withdrawn.json and the metadata torrent
    (the whole catalogue as JSON lines and SQLite; a new one only when it changed).

    \b
    Example:
      ccmirror publish manifests/netlabels.toml && xdg-open ~/ccmirror/netlabels/public/index.html
    """
    from ccmirror.publish.run import publish as run

    with mirror_for(manifest, write=True) as mirror:
        emit(run(mirror, reporter=reporter()), _publish_table)


def _search_table(r: dict[str, Any]) -> str:
    if not r["hits"]:
        return f"No item matches {r['query']!r}."
    rows = []
    for h in r["hits"]:
        verdicts = ",".join(f"{k}:{v}" for k, v in sorted(h["verdicts"].items()))
        title = (h["title"] or "")[:50]
        creator = (h["creator"] or "")[:30]
        packs = ",".join(h["packs"]) or "-"
        tier = "-" if h["tier"] is None else h["tier"]
        rows.append((h["id"], title, creator, h["licence_id"] or "-", verdicts, tier, packs))
    table = format_table(("id", "title", "creator", "licence", "verdicts", "tier", "pack"), rows)
    more = f"\n({r['total']} matches, {r['shown']} shown)" if r["total"] > r["shown"] else ""
    return table + more


@click.command()
@manifest_argument
@click.argument("words", nargs=-1, required=True, metavar="WORDS...")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most this many hits (the total is always counted).",
)
@output_options
def search(manifest: str, words: tuple[str, ...], limit: int) -> None:
    """Full-text search of the catalogue: title, creator, album and identifiers
    (ia:/fma: ids, ISRCs). Every word must match, as a prefix. Each hit shows its
    licence, verdicts, tier and pack.

    \b
    Example:
      ccmirror search manifests/netlabels.toml ambient drone --json
    """
    from ccmirror.search import search as run

    with mirror_for(manifest, write=False) as mirror:
        emit(run(mirror, " ".join(words), limit), _search_table)


def _withdraw_table(r: dict[str, Any]) -> str:
    packs = ", ".join(r["packs_obsoleted"]) or "none"
    again = " (was already withdrawn)" if r["already_withdrawn"] else ""
    return (
        f"withdrew {r['id']}{again}: {r['files_deleted']} file copies deleted; "
        f"packs now obsolete: {packs}. The next 'ccmirror pack' (or sync) seals "
        "replacements without it."
    )


@click.command()
@manifest_argument
@click.argument("item_id", metavar="ID")
@click.option("--reason", required=True, help="Why (published in withdrawn.json).")
@lock_option
@output_options
def withdraw(manifest: str, item_id: str, reason: str) -> None:
    """Withdraw an item (a takedown request): delete it from the store and from pack
    payloads, mark its packs obsolete, never fetch or pack it again, and record it in
    public/withdrawn.json. ID is ia:<identifier>, fma:<track id>, or a bare id when only
    one item has it.

    \b
    Example:
      ccmirror withdraw manifests/netlabels.toml ia:some_item --reason "request from the artist, 2026-03-01"
    """
    from ccmirror.withdraw import withdraw as run

    with mirror_for(manifest, write=True) as mirror:
        emit(run(mirror, item_id, reason), _withdraw_table)


def _plan_table(r: dict[str, Any]) -> str:
    if not r["plan"]:
        return f"No torrent fits in {r['space_human']}."
    rows = []
    for c in r["plan"]:
        seeders = "?" if c["seeders"] is None else c["seeders"]
        leechers = "?" if c["leechers"] is None else c["leechers"]
        share = f"{100 * c['popularity_share']:.1f}%"
        rows.append(
            (
                c["rank"],
                c["name"],
                seeders,
                leechers,
                share,
                format_size(c["data_size"]),
                c["torrent_path"],
            )
        )
    head = ("#", "torrent", "seeders", "leechers", "listening", "size", "torrent file")
    return (
        format_table(head, rows)
        + f"\n{format_size(r['used'])} of {r['space_human']} used; '?' = tracker did not answer."
    )


@click.command("seed-plan")
@manifest_argument
@click.option(
    "--budget",
    "--space",
    "space",
    required=True,
    type=SIZE,
    metavar="SIZE",
    help="Disk you offer, e.g. 2TB, 500GiB (--space is the old name).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds to wait for the trackers' scrape replies.",
)
@output_options
def seed_plan(manifest: str, space: int, timeout: float) -> None:
    """List the torrents that most need seeders (fewest seeders first, then the most
    listened) that fit in the space you offer. Counts come from a tracker scrape;
    a torrent whose tracker does not answer shows '?' and still ranks.

    \b
    Example:
      ccmirror seed-plan manifests/netlabels.toml --budget 2TB
    """
    from ccmirror.seedplan import seed_plan as run

    with mirror_for(manifest, write=False) as mirror:
        emit(run(mirror, space, timeout=timeout), _plan_table)


COMMANDS = [publish, search, withdraw, seed_plan]
