"""The ``segcodec eval`` command: score answers against ground-truth masks."""

from __future__ import annotations

import json
from pathlib import Path

import click

from paligemma_segcodec.cli.answers import (
    predictions_of,
)
from paligemma_segcodec.cli.base import (
    DIR,
    FILE,
    OUTFILE,
    checkpoint_option,
    clean,
    codec_for,
    guard_outputs,
    progress_enabled,
    threshold_option,
    user_errors,
    workers_option,
)


def _det_ious(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """``--det-ious 0.5,0.75`` → ``(0.5, 0.75)`` (checked: numbers in [0, 1], no repeats)."""
    from paligemma_segcodec.datasets.bv_protocol import check_det_ious

    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of numbers (e.g. 0.5,0.75)") from None
    try:
        return check_det_ious(numbers)
    except ValueError as err:
        raise click.BadParameter(f"{value!r}: {err}") from None


@click.command(name="eval")
@click.option("--predictions", type=FILE, required=True, help="JSONL with image + prediction (or suffix).")
@click.option("--masks", type=DIR, default=None, help="Ground-truth masks folder (matched by stem).")
@click.option("--coco", type=FILE, default=None, help="Ground-truth COCO instances JSON instead.")
@threshold_option
@click.option("--csv", "csv_out", type=OUTFILE, default=None, help="Per-image scores CSV.")
@click.option("--json", "json_out", type=OUTFILE, default=None, help="Metrics JSON.")
@click.option(
    "--protocol",
    type=click.Choice(["segcodec", "big_vision"]),
    default="segcodec",
    show_default=True,
    help="segcodec: every object of an answer (mIoU, cIoU, box_acc@0.5/0.75). big_vision: big_vision's "
    "PaliGemma evaluator exactly: the first 4+16 tokens only (miou, boxacc/<t>, invalid, total).",
)
@click.option(
    "--det-ious",
    default=None,
    callback=_det_ious,
    metavar="T1,T2,...",
    help="--protocol big_vision: box-accuracy thresholds, one boxacc/<t> each  [default: 0.5,0.75]",
)
@workers_option
@click.option("--progress/--no-progress", default=True, show_default=True)
@checkpoint_option
def eval_(
    predictions: Path,
    masks: Path | None,
    coco: Path | None,
    threshold: int,
    csv_out: Path | None,
    json_out: Path | None,
    protocol: str,
    det_ious: tuple[float, ...] | None,
    workers: int | None,
    progress: bool,
    checkpoint: Path | None,
) -> None:
    """Score answers against ground-truth masks (metrics JSON on stdout).

    --protocol segcodec (default): every object of an answer is pasted and merged; mIoU, cIoU, box
    accuracy @0.5/@0.75 (pixel boxes around all objects), invalid (answers with no object that
    parses), skipped objects. --protocol big_vision: the numbers of big_vision's PaliGemma
    segmentation evaluator: only the first 4 <loc> + 16 <seg> tokens of an answer are read; anything
    else (detection only, malformed, degenerate box, empty) is invalid with IoU 0; miou,
    boxacc/<t> (--det-ious), invalid, total. See the evaluation page of the docs.

    Example:

    \b
      segcodec eval --predictions preds.jsonl --masks water/masks
      segcodec eval --predictions preds.jsonl --masks water/masks --protocol big_vision --det-ious 0.5,0.75
    """
    from paligemma_segcodec.datasets.evaluate import evaluate
    from paligemma_segcodec.safeio import atomic_write

    if (masks is None) == (coco is None):
        raise click.UsageError("give --masks DIR or --coco FILE")
    if det_ious is not None and protocol != "big_vision":
        raise click.UsageError("--det-ious applies to --protocol big_vision only")
    guard = guard_outputs([("--csv", csv_out), ("--json", json_out)], [predictions, coco, checkpoint], [masks])
    with user_errors():
        preds = predictions_of(predictions)
        stems: dict[str, str] = {}
        for name in preds:
            stem = Path(name).stem
            if stem in stems:
                raise ValueError(
                    f"{predictions}: predictions for {stems[stem]!r} and {name!r} match the same ground truth "
                    f"(stem {stem!r}); keep one"
                )
            stems[stem] = name
        codec = codec_for(checkpoint) if any("<seg" in t for t in preds.values()) else None
        report = evaluate(
            preds,
            masks_dir=masks,
            coco=coco,
            threshold=threshold,
            codec=codec,
            workers=workers,
            protocol=protocol,
            det_ious=det_ious,
            progress=progress_enabled(progress),
        )
        metrics = report.metrics()
        if csv_out is not None:
            guard.check_output(csv_out, "--csv")
            report.write_csv(csv_out)
        if json_out is not None:
            with atomic_write(json_out, guard=guard) as f:
                f.write(json.dumps(metrics, indent=2) + "\n")
    click.echo(json.dumps(metrics, indent=2))
    errors = [p for p in report.skipped if p.severity == "error"]
    for p in report.skipped:
        click.echo(f"{'skipped' if p.severity == 'error' else 'warning'}: {clean(p.file)}: {clean(p.reason)}", err=True)
    if errors:
        click.echo(f"{len(errors)} ground-truth item(s) could not be used (listed above); exit 1", err=True)
        raise SystemExit(1)
