"""`ccmirror` command line: the group, command discovery and the one error handler.

Each module in this package defines its commands and lists them in `COMMANDS`; they are
registered here by discovery, so adding a command never edits this file.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import signal
import sqlite3
import sys
import traceback

import click

from ccmirror import __version__
from ccmirror.cli.common import log_summary, output_options, settings, setup_logging
from ccmirror.errors import EXIT_USAGE, CCMirrorError

log = logging.getLogger("ccmirror")


class Terminated(BaseException):
    """SIGTERM/SIGHUP as an exception, so cleanup (locks, .part files, resume data) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'ccmirror COMMAND --help' for a command's options and an example.",
)
@click.version_option(__version__, "--version", prog_name="ccmirror")
@output_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Mirror Creative-Commons and public-domain recordings from the Internet Archive and
    the Free Music Archive as licence-checked, popularity-tiered BitTorrent packs.

    \b
    Typical use:
      ccmirror sync manifests/netlabels.toml     # cron: harvest, fetch, check, pack, publish
      ccmirror seed manifests/netlabels.toml     # seed every sealed pack
      ccmirror demo                              # the whole job on a local sample, no network
    """
    # --data-dir's default is the manifest's data_dir, then CCMIRROR_DATA_DIR (the loader).
    setup_logging(settings(ctx))


def _discover() -> None:
    pkg = sys.modules[__name__]
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_discover()


def _command_words(argv: list[str]) -> str:
    """The command as typed ("sync", "licence inspect"), for the log's summary line."""
    words: list[str] = []
    group: click.Command = cli
    for arg in argv:
        sub = getattr(group, "commands", {}).get(arg)
        if sub is not None:
            words.append(arg)
            group = sub
    return " ".join(words) or "ccmirror"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and the right exit code for every failure;
    with --log-file, one summary line (exit code and counts) ends every run there."""
    args = argv if argv is not None else sys.argv[1:]
    code = 0
    try:
        _main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise
    finally:
        log_summary(_command_words(args), code)


def _main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("CCMIRROR_DEBUG")
    )
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    try:
        cli.main(args=argv, prog_name="ccmirror", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.NoArgsIsHelpError as e:
        # Click would print the whole help as the "error"; one line that names the choices.
        group = e.ctx.command if e.ctx is not None else cli
        path = e.ctx.command_path if e.ctx is not None else "ccmirror"
        names = ", ".join(getattr(group, "commands", {}))
        click.echo(f"ccmirror: missing command, one of: {names} (see '{path} --help')", err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as e:
        # One line, like every other failure; where to look for the right usage.
        path = e.ctx.command_path if e.ctx is not None else "ccmirror"
        click.echo(f"ccmirror: {e.format_message()} (see '{path} --help')", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        click.echo(f"ccmirror: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("ccmirror: interrupted", err=True)
        sys.exit(128 + signal.SIGINT)
    except CCMirrorError as e:
        if debug:
            traceback.print_exc()
        click.echo(f"ccmirror: {e.message}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("ccmirror: interrupted", err=True)
        sys.exit(128 + signal.SIGINT)
    except Terminated as e:
        click.echo(f"ccmirror: stopped by signal {e.signum}", err=True)
        sys.exit(128 + e.signum)
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except sqlite3.DatabaseError as e:
        # A damaged or foreign catalogue file met after it was opened (read-only opens are lazy).
        if debug:
            traceback.print_exc()
        click.echo(f"ccmirror: catalogue: {e} (is catalogue.sqlite damaged?)", err=True)
        sys.exit(1)
    except OSError as e:
        if debug:
            traceback.print_exc()
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"ccmirror: {e.strerror or e}{where}", err=True)
        sys.exit(1)
    except Exception as e:  # the last resort: one line, traceback only with --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"ccmirror: internal error: {type(e).__name__}: {e} (run with --debug for details)",
            err=True,
        )
        sys.exit(1)
