"""Dataset tools on top of the codec: convert, lint, audit, evaluate, COCO in/out.

One module per tool: `files` (pairs, objects), `convert`, `coco`, `lint`, `audit`, `evaluate`.
"""

from paligemma_segcodec.datasets.audit import AuditReport, audit_folder, iou
from paligemma_segcodec.datasets.coco import mask_to_polygons, mask_to_rle, segments_to_coco
from paligemma_segcodec.datasets.convert import ConvertReport, convert_coco, convert_folder
from paligemma_segcodec.datasets.evaluate import EvalReport, evaluate, read_predictions
from paligemma_segcodec.datasets.files import MaskObject, Pair, Problem, extract_objects, match_pairs, parse_classes
from paligemma_segcodec.datasets.lint import LintReport, lint_folder

__all__ = [
    "AuditReport",
    "ConvertReport",
    "EvalReport",
    "LintReport",
    "MaskObject",
    "Pair",
    "Problem",
    "audit_folder",
    "convert_coco",
    "convert_folder",
    "evaluate",
    "extract_objects",
    "iou",
    "lint_folder",
    "mask_to_polygons",
    "mask_to_rle",
    "match_pairs",
    "parse_classes",
    "read_predictions",
    "segments_to_coco",
]
