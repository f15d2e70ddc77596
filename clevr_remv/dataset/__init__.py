"""Reading and working with a dataset on disk: the store (the one reader of the format), atomic
writes, splits, statistics, contact sheets, validation, export and the PyTorch dataset."""
