"""What every ``segcodec`` command shares: the `main` group and its one error path
(`SegcodecGroup`), the common options, `user_errors`, `guard_outputs` and `codec_for`.

Each command lives in its own module of `paligemma_segcodec.cli` and imports this one; the
package's ``__init__`` adds them to `main`. This module imports no command.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from paligemma_segcodec._version import __version__
from paligemma_segcodec.checkpoint import ENV_VAR
from paligemma_segcodec.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    OutputOverInputError,
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INPUT = 1  # a bad input file or a failed write; the run may have finished the rest
EXIT_USAGE = 2  # refused before any work: bad options, an output that would overwrite an input
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def clean(text: object) -> str:
    """``text`` on one line, control characters escaped: a file name with a newline (or any other
    input) cannot split one error line into two."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


class RegularFile(click.Path):
    """An existing input file that must be a regular file (never a FIFO, device or folder)."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from paligemma_segcodec.safeio import check_regular

        path = super().convert(value, param, ctx)
        try:
            check_regular(os.fsdecode(path))
        except OSError as err:
            self.fail(f"{os.fspath(path)!r}: {err.strerror or err}", param, ctx)
        return path


def _quiet_stop_hook(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``sys.unraisablehook`` that drops the Ctrl-C / SIGTERM exception of a signal handler that ran
    where Python cannot raise (a gc callback, a finalizer): the stop is recorded anyway
    (`paligemma_segcodec.safeio.request_stop`) and the run ends at its next check."""
    from paligemma_segcodec.safeio import Interrupted

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, (KeyboardInterrupt, Interrupted)):
            return
        default(unraisable)

    return hook


def _kept_line() -> str:
    from paligemma_segcodec.safeio import committed_files

    done = committed_files()
    if not done:
        return "no output was written; any previous output files are unchanged"
    names = ", ".join(str(p) for p in done[:3]) + (f" and {len(done) - 3} more" if len(done) > 3 else "")
    return f"kept the {len(done)} file(s) completed before ({names}); nothing partial was written"


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " ".join(lines) if lines else ""


class SegcodecGroup(click.Group):
    """The ``segcodec`` group: every command's errors, signals and exit codes handled in one place."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole one-line purpose (the first paragraph of its help), wrapped,
        never cut off with "..." as click's short help is."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                first = (cmd.help or "").split("\n\n")[0]
                rows.append((name, " ".join(first.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = os.environ.get("SEGCODEC_DEBUG", "") not in ("", "0")
        end = argv.index("--") if "--" in argv else len(argv)
        if "--debug" in argv[:end]:  # accepted anywhere before "--", for every command
            argv = [a for i, a in enumerate(argv) if not (a == "--debug" and i < end)]
            debug = True
        from paligemma_segcodec.safeio import clear_stop, install_stop_handlers, stop_requested

        clear_stop()
        unraisable = sys.unraisablehook
        sys.unraisablehook = _quiet_stop_hook(unraisable)
        previous = install_stop_handlers()
        try:
            code = self._run(argv, prog_name, complete_var, debug, **extra)
            signum = stop_requested()
            if signum and code not in (EXIT_SIGINT, EXIT_SIGTERM, 128 + signum):
                # the signal's exception was swallowed somewhere; no output was committed after it
                name = signal.Signals(signum).name
                click.echo(f"Error: interrupted ({name}): {_kept_line()}", err=True)
                code = EXIT_SIGINT if signum == signal.SIGINT else 128 + signum
        finally:
            sys.unraisablehook = unraisable
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, argv: list[str], prog_name: str | None, complete_var: str | None, debug: bool, **extra: Any) -> int:
        from paligemma_segcodec.safeio import Interrupted, stop_requested

        def fail(code: int, message: str) -> int:
            if debug:
                traceback.print_exc()
            signum = stop_requested()
            if signum and code not in (EXIT_SIGINT, 128 + signum):
                # e.g. Ctrl-C while an extension imported: it arrives as that import's error
                name = signal.Signals(signum).name
                code, message = 128 + signum, f"interrupted ({name}): {_kept_line()}"
            click.echo(f"Error: {clean(_one_line(message))}", err=True)
            return code

        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            return rv if isinstance(rv, int) else 0
        except SystemExit as err:
            return err.code if isinstance(err.code, int) else (0 if err.code is None else EXIT_INPUT)
        except click.exceptions.Exit as err:
            return err.exit_code
        except click.UsageError as err:
            if debug:
                traceback.print_exc()
            err.show()
            return EXIT_USAGE
        except OutputOverInputError as err:
            return fail(EXIT_USAGE, str(err))
        except click.ClickException as err:
            cause = err.__cause__
            if isinstance(cause, OutputOverInputError):
                return fail(EXIT_USAGE, str(cause))
            return fail(err.exit_code, err.format_message())
        except (KeyboardInterrupt, click.Abort):
            return fail(EXIT_SIGINT, f"interrupted (SIGINT): {_kept_line()}")
        except Interrupted as err:
            name = signal.Signals(err.signum).name
            return fail(128 + err.signum, f"terminated ({name}): {_kept_line()}")
        except MemoryError:
            return fail(EXIT_INPUT, f"out of memory; {_kept_line()}")
        except (CheckpointNotFoundError, CheckpointError, ValueError, OSError) as err:
            return fail(EXIT_INPUT, f"{err}; {_kept_line()}" if isinstance(err, OSError) else str(err))
        except Exception as err:
            return fail(
                EXIT_INPUT,
                f"internal error ({type(err).__name__}: {err}); rerun with --debug for the traceback "
                "and report it. " + _kept_line(),
            )


def checkpoint_option(fn: F) -> F:
    """``--checkpoint PATH``, shared by every command that needs the codec."""
    return click.option(
        "--checkpoint",
        type=RegularFile(),
        default=None,
        help=f"vae-oid.npz to use (default: ${ENV_VAR}, else the Hugging Face download).",
    )(fn)


def convention_option(fn: F) -> F:
    """``--convention big_vision|colab``: how <loc> tokens become pixels when masks are pasted."""
    return click.option(
        "--convention",
        type=click.Choice(["big_vision", "colab"]),
        default="big_vision",
        show_default=True,
        help="loc -> pixel rule: int(k/1023*side) (big_vision) or round(k/1024*side) (colab).",
    )(fn)


def label_option(fn: F, *, default: str | None = None, help: str = "Label appended after the tokens.") -> F:
    """``--label TEXT``, checked by `paligemma_segcodec.tokens.check_label` before any work."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from paligemma_segcodec.tokens import check_label

        try:
            return None if value is None else check_label(value)
        except ValueError as err:
            raise click.BadParameter(str(err), ctx=ctx, param=param) from None

    return click.option("--label", default=default, show_default=default is not None, callback=check, help=help)(fn)


def output_option(*, type: Any, help: str, required: bool = False, dest: str = "out") -> Callable[[F], F]:
    """``--output/-o``: the same name for a command's output in every command. The old spelling
    ``--out`` is kept, hidden, for one release: it works and prints a deprecation line."""
    key = f"segcodec.deprecated_out.{dest}"

    def alias(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            click.echo("warning: --out is deprecated and goes away in the next release: use --output (or -o)", err=True)
            ctx.meta[key] = value
        return value

    def take(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        old = ctx.meta.get(key)
        if value is not None and old is not None:
            raise click.UsageError("give --output (or -o) once; --out is its deprecated old name")
        value = value if value is not None else old
        if required and value is None:
            raise click.MissingParameter(ctx=ctx, param=param)
        return value

    def decorate(fn: F) -> F:
        text = help + ("  [required]" if required else "")
        fn = click.option("--output", "-o", dest, type=type, help=text, callback=take)(fn)
        return click.option(
            "--out", f"deprecated_out_{dest}", type=type, hidden=True, expose_value=False, is_eager=True, callback=alias
        )(fn)

    return decorate


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns the library's bad-input and missing-checkpoint errors into clean CLI errors (exit 1;
    an output that would overwrite an input: exit 2)."""
    try:
        yield
    except OutputOverInputError:
        raise
    except (CheckpointNotFoundError, CheckpointError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err


def guard_outputs(
    outputs: Iterable[tuple[str, Path | None]],
    input_files: Iterable[Path | None] = (),
    input_folders: Iterable[Path | None] = (),
) -> Any:
    """Refuses (exit 2, before any work) an output that is, or would overwrite, an input file;
    returns the `paligemma_segcodec.safeio.InputGuard` for the writes the command makes later.

    Args:
      outputs: ``(option, path)`` pairs, e.g. ``("--json", Path("m.json"))``; None entries are skipped.
      input_files: the run's input files (the checkpoint, predictions, COCO JSON, …).
      input_folders: folders whose files are inputs (images, masks).
    """
    from paligemma_segcodec.safeio import InputGuard

    guard = InputGuard()
    guard.add_all(input_files)
    for folder in input_folders:
        guard.add_folder(folder)
    ckpt = os.environ.get(ENV_VAR)
    if ckpt:
        guard.add(ckpt)
    seen: dict[str, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        if path.name in ("", ".", "..") or path.is_dir():
            raise OutputOverInputError(f"{option} {path} is a folder; give a file name")
        guard.check_output(path, option)
        real = os.path.realpath(path)
        if real in seen:
            raise OutputOverInputError(f"{option} and {seen[real]} are the same file {path}: give them different paths")
        seen[real] = option
    return guard


def codec_for(checkpoint: Path | None) -> Any:
    from paligemma_segcodec.codec import load_codec

    return load_codec(checkpoint)


@click.group(cls=SegcodecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="segcodec")
@click.option("--debug", is_flag=True, hidden=False, help="Show Python tracebacks (also accepted after the command).")
def main(debug: bool) -> None:
    """Segmentation masks <-> PaliGemma <loc>/<seg> tokens (big_vision's vae-oid codec).

    Exit codes: 0 done; 1 bad input files (the rest was still processed) or a failed write;
    2 refused usage (bad options, an output over an input); 130/143 interrupted (SIGINT/SIGTERM;
    no partial output is left under a final name).
    """


def record_convention(name: str) -> Any:
    return "colab" if name == "colab" else "big_vision"


DIR = click.Path(exists=True, file_okay=False, path_type=Path)
"""An existing input folder."""
FILE = RegularFile()
"""An existing regular input file."""
OUTFILE = click.Path(dir_okay=False, path_type=Path)
"""An output file (never a folder)."""


def threshold_option(fn: F) -> F:
    """``--threshold``: mask pixels above it are foreground."""
    return click.option(
        "--threshold", default=127, show_default=True, help="Mask pixels > this are foreground (0/1 masks: > 0)."
    )(fn)


def workers_option(fn: F) -> F:
    """``--workers``: processes that read and prepare files (outputs do not depend on it)."""
    from paligemma_segcodec.datasets.parallel import WORKERS_HELP

    return click.option("--workers", type=click.IntRange(min=1), default=None, help=WORKERS_HELP)(fn)


def progress_bar(items: list[Any], desc: str, enabled: bool) -> Any:
    """``items`` wrapped in a progress bar on stderr (none for fewer than two items)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not enabled or len(items) < 2, file=sys.stderr)
