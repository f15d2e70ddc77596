"""clevr-remv: generate and benchmark CLEVR-REMV, a multi-view referring-expression segmentation dataset.

The core (layout, rig, on-disk format, metrics) imports without bpy or torch;
``ClevrRemvDataset`` is imported lazily because it needs torch.
"""

__version__ = "0.1.0"
FORMAT_VERSION = 1

__all__ = ["ClevrRemvDataset", "FORMAT_VERSION", "__version__"]


def __getattr__(name):
    if name == "ClevrRemvDataset":
        from clevr_remv.dataset.pytorch import ClevrRemvDataset

        return ClevrRemvDataset
    raise AttributeError(f"module 'clevr_remv' has no attribute {name!r}")
