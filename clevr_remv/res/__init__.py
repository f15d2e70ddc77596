"""Referring-expression segmentation: scoring predictions (evaluate), the RES models and the
benchmark that trains on centre views and tests on shifted ones."""
