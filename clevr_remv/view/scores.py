"""Predicted masks and their IoU per view, read and scored with `evaluate`'s own code, so the
viewer shows exactly the numbers `clevr-remv evaluate` reports."""

import numpy as np

from clevr_remv.dataset.expressions import target_mask
from clevr_remv.metrics import intersection_and_union, summarize
from clevr_remv.res.evaluate import open_predictions


class ViewerPredictions:
    """A predictions file or folder in `evaluate`'s formats (JSON Lines or PNG folder)."""

    def __init__(self, path):
        self.source = open_predictions(path)

    def mask(self, scene: int, expression_id: int, view, shape):
        """The predicted boolean mask of one sample, or None when there is no prediction."""
        return self.source.mask((scene, expression_id, *view), shape)

    def view_scores(self, scene: int, expression: dict, read_index) -> dict:
        """IoU (%) of ``expression`` in each view where it is valid, as `evaluate` scores it
        (a missing prediction counts as an empty mask), and mIoU / oIoU over those views.

        ``read_index(u, v)`` gives a view's object-index mask.
        """
        views, intersections, unions = [], [], []
        for u, v in map(tuple, expression["views"]):
            target = target_mask(read_index(u, v), expression)
            prediction = self.mask(scene, expression["id"], (u, v), target.shape)
            intersection, union = intersection_and_union(
                np.zeros(target.shape, bool) if prediction is None else prediction, target
            )
            intersections.append(intersection)
            unions.append(union)
            views.append(
                {
                    "u": u,
                    "v": v,
                    "iou": summarize([intersection], [union])["oIoU"],
                    "intersection": intersection,
                    "union": union,
                    "missing": prediction is None,
                }
            )
        overall = summarize(intersections, unions)
        return {"views": views, "mIoU": overall["mIoU"], "oIoU": overall["oIoU"]}
