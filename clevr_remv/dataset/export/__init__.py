"""Export a CLEVR-REMV dataset to formats that existing code reads unchanged.

- :mod:`refcoco`: the REFER layout (refs(<split_by>).p + instances.json) of LAVT, CRIS and co.
- :mod:`grefcoco`: gRefCOCO's layout (grefs(<split_by>).json + instances.json) of generalized RES code.
- :mod:`clevr_ref`: CLEVR-Ref+ scenes and refexps JSON files (IEP-Ref-style code).
- :mod:`coco`: COCO instance segmentation, one image per view.
"""
