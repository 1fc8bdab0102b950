"""Datasets: the motion convention, loaders, preprocessing and the registry."""

from skelrobust.data.dataset import SkeletonDataset, TorchSkeletonDataset, check_motion
from skelrobust.data.registry import DatasetSpec, dataset_spec, list_datasets, load_dataset

__all__ = [
    "DatasetSpec",
    "SkeletonDataset",
    "TorchSkeletonDataset",
    "check_motion",
    "dataset_spec",
    "list_datasets",
    "load_dataset",
]
