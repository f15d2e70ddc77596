"""`clevr-remv view`: a local web viewer of a dataset's light fields, expressions and predictions.

``catalog`` reads the dataset (scene list, scene detail, files inside the root), ``layers`` draws
the PNG overlays (outlines, instance masks, predictions, depth), ``scores`` gives per-view IoU
with `evaluate`'s code, ``server`` is the Starlette app over them and ``static/`` the page.
"""
