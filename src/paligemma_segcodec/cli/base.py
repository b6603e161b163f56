"""What every ``segcodec`` command shares: the `main` group and its one error path
(`SegcodecGroup`), the common options, `user_errors`, `guard_outputs` and `codec_for`.

Each command lives in its own module of `paligemma_segcodec.cli` and imports this one; the
package's ``__init__`` adds them to `main`. This module imports no command.
"""

from __future__ import annotations

import os
import signal
import sys
import time
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


VERBOSITY = "segcodec.verbosity"
"""``ctx.meta`` key (shared by the group's and the command's contexts): -1 ``--quiet``, 0 default,
1 ``--verbose``."""


def verbosity(ctx: click.Context | None = None) -> int:
    """-1 under ``--quiet``, 1 under ``--verbose``, else 0 (also outside a command)."""
    ctx = ctx or click.get_current_context(silent=True)
    return int(ctx.meta.get(VERBOSITY, 0)) if ctx is not None else 0


def info(message: str) -> None:
    """An info line on stderr ("wrote ...", summaries): left out under ``--quiet``."""
    if verbosity() >= 0:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """A detail line on stderr (per-file notes, timing): only under ``--verbose``."""
    if verbosity() > 0:
        click.echo(message, err=True)


def _set_verbosity(level: int) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if not value:
            return
        current = ctx.meta.get(VERBOSITY, 0)
        if current not in (0, level):
            raise click.UsageError("give --quiet (-q) or --verbose (-v), not both")
        ctx.meta[VERBOSITY] = level

    return callback


_VERBOSITY = (
    (("--quiet", "-q"), -1, "Only warnings and errors on stderr: no progress, no info lines."),
    (("--verbose", "-v"), 1, "Also per-file details and timing on stderr."),
)


def _verbosity_params() -> list[click.Parameter]:
    return [
        click.Option(list(decls), is_flag=True, expose_value=False, callback=_set_verbosity(level), help=text)
        for decls, level, text in _VERBOSITY
    ]


def verbosity_options(fn: F) -> F:
    """``--quiet/-q`` and ``--verbose/-v`` (`SegcodecGroup.add_command` gives them to every command,
    the group has them too: accepted before or after the command name)."""
    for decls, level, text in reversed(_VERBOSITY):
        fn = click.option(*decls, is_flag=True, expose_value=False, callback=_set_verbosity(level), help=text)(fn)
    return fn


def usage_line(err: click.UsageError) -> str:
    """A click usage error as one line: which option, what is wrong, what to do (never click's
    usage and "Try --help" lines)."""
    ctx = err.ctx
    where = f"see '{ctx.command_path} --help'" if ctx is not None else "see 'segcodec --help'"
    if isinstance(err, click.NoSuchOption):
        hidden = {o for p in (ctx.command.params if ctx else []) if getattr(p, "hidden", False) for o in p.opts}
        shown = sorted(set(err.possibilities or ()) - hidden)
        maybe = f" (did you mean {' or '.join(shown)}?)" if shown else ""
        return f"no such option {err.option_name}{maybe}; {where}"
    if isinstance(err, click.MissingParameter):
        param = err.param
        if isinstance(param, click.Argument):
            return f"missing {param.human_readable_name}; give it ({where})"
        if param is not None:
            names = sorted(param.opts, key=len, reverse=True)
            return f"missing option {' / '.join(names)}: give it ({where})"
        return f"{err.format_message()}; {where}"
    if isinstance(err, click.BadParameter):
        param = err.param
        name = err.param_hint if isinstance(err.param_hint, str) else None
        if param is not None:
            opts = getattr(param, "opts", [])
            longest = max(opts, key=len) if isinstance(param, click.Option) and opts else None
            name = longest or param.human_readable_name
        message = _one_line(err.message).rstrip(".")
        message = message.replace("Directory '", "folder '").replace("File '", "file '")
        message = message.replace("is a directory", "is a folder")
        return f"{name}: {message} ({_what_to_do(param, where)})" if name else f"{message} ({where})"
    message = _one_line(err.format_message()).rstrip(".")
    if type(err) is click.UsageError and ctx is not None and ctx.command is not None:
        if isinstance(ctx.command, click.Group) and message.startswith("No such command"):
            return f"{message[0].lower()}{message[1:]}; see 'segcodec --help' for the commands"
        if any(word in message for word in ("give", "use ", "choose", "rename", "pip install", "need")):
            return message
    return f"{message[0].lower()}{message[1:]}; {where}" if message else where


def _what_to_do(param: click.Parameter | None, where: str) -> str:
    kind = getattr(param, "type", None)
    if isinstance(kind, click.Path):
        if kind.exists and not kind.file_okay:
            return "give an existing folder"
        if kind.exists and not kind.dir_okay:
            return "give an existing file"
        if not kind.dir_okay:
            return "give a file name, not a folder"
        return where
    if isinstance(kind, click.Choice):
        return "choose one of " + ", ".join(map(str, kind.choices))
    return where


class SegcodecGroup(click.Group):
    """The ``segcodec`` group: every command's errors, signals and exit codes handled in one place."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Adds ``cmd`` with the options every command shares (`verbosity_options`)."""
        present = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        if "--quiet" not in present:
            cmd.params.extend(_verbosity_params())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        start = time.perf_counter()
        rv = super().invoke(ctx)
        sub = ctx.invoked_subcommand
        if sub and verbosity() > 0:
            click.echo(f"{sub}: done in {time.perf_counter() - start:.1f} s", err=True)
        return rv

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
            return fail(EXIT_USAGE, usage_line(err))
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
@verbosity_options
def main(debug: bool) -> None:
    """Segmentation masks <-> PaliGemma <loc>/<seg> tokens (big_vision's vae-oid codec).

    --quiet/-q and --verbose/-v (here or after the command) set how much goes to stderr: --quiet only
    warnings and errors (no progress, no "wrote ..." lines), --verbose also per-file details and
    timing. Progress is a bar on a terminal and a plain line every 10 s otherwise
    (SEGCODEC_PROGRESS_INTERVAL seconds).

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


def progress_bar(
    items: Iterable[Any], desc: str, enabled: bool = True, *, unit: str = "img", total: int | None = None
) -> Any:
    """``items`` with progress on stderr, for every command's long loop: a tqdm bar on a terminal,
    a plain ``desc: n/total unit (pct%), rate`` line every `paligemma_segcodec.progress.interval`
    seconds otherwise; none when ``enabled`` is false, under ``--quiet``, or for fewer than two
    items."""
    from paligemma_segcodec.progress import track

    return track(items, total=total, desc=desc, unit=unit, enabled=progress_enabled(enabled))


def progress_enabled(flag: bool = True) -> bool:
    """A command's ``--progress/--no-progress`` value, off under ``--quiet``."""
    return bool(flag) and verbosity() >= 0
