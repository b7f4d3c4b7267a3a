"""Data: built-in sets and image folders -> arrays once per process, with the test split sealed."""

from tuner.data.dataset import DataSet
from tuner.data.load import load_dataset, load_study_data

__all__ = ["DataSet", "load_dataset", "load_study_data"]
