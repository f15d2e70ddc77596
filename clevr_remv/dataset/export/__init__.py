"""Export a CLEVR-REMV dataset to formats that existing code reads unchanged.

- `refcoco`: the REFER layout (refs(<split_by>).p + instances.json) of LAVT, CRIS and co.
- `grefcoco`: gRefCOCO's layout (grefs(<split_by>).json + instances.json) of generalized RES code.
- `clevr_ref`: CLEVR-Ref+ scenes and refexps JSON files (IEP-Ref-style code).
- `coco`: COCO instance segmentation, one image per view.
"""
