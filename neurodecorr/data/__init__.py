"""Datasets as float32 feature matrices and int64 labels, plus seeded mini-batch indices.

    load_dataset(name, data_dir=None, scaling="standardise") -> Dataset
                                                     names: dataset_names(), registry DATASETS
    batches(n_samples, batch_size, rng)              shuffled index arrays, one epoch
    read_idx(path) / write_idx(path, array)          the IDX file format of (Fashion-)MNIST

Scaling and the datasets are described in neurodecorr.data.loaders.
"""

from neurodecorr.data.dataset import Dataset, batches
from neurodecorr.data.idx import read_idx, write_idx
from neurodecorr.data.loaders import DATASETS, DatasetSource, dataset_names, load_dataset

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSource",
    "batches",
    "dataset_names",
    "load_dataset",
    "read_idx",
    "write_idx",
]
