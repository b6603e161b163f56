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
    threshold_option,
    user_errors,
    workers_option,
)


@click.command(name="eval")
@click.option("--predictions", type=FILE, required=True, help="JSONL with image + prediction (or suffix).")
@click.option("--masks", type=DIR, default=None, help="Ground-truth masks folder (matched by stem).")
@click.option("--coco", type=FILE, default=None, help="Ground-truth COCO instances JSON instead.")
@threshold_option
@click.option("--csv", "csv_out", type=OUTFILE, default=None, help="Per-image scores CSV.")
@click.option("--json", "json_out", type=OUTFILE, default=None, help="Metrics JSON.")
@workers_option
@checkpoint_option
def eval_(
    predictions: Path,
    masks: Path | None,
    coco: Path | None,
    threshold: int,
    csv_out: Path | None,
    json_out: Path | None,
    workers: int | None,
    checkpoint: Path | None,
) -> None:
    """Score answers: mIoU, cIoU, box accuracy @0.5/@0.75, invalid answers (big_vision's definitions).

    Example:

    \b
      segcodec eval --predictions preds.jsonl --masks water/masks
    """
    from paligemma_segcodec.datasets.evaluate import evaluate
    from paligemma_segcodec.safeio import atomic_write

    if (masks is None) == (coco is None):
        raise click.UsageError("give --masks DIR or --coco FILE")
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
        report = evaluate(preds, masks_dir=masks, coco=coco, threshold=threshold, codec=codec, workers=workers)
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
