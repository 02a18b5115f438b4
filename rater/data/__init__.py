"""Data in and out: file formats, import, the train/test split and training exports, plus the demo set. Imports
rater.store and rater.core."""
