"""Evaluation: blind evaluation sets, the report (acceptance, agreement, kappa), its rendering and the judge's
calibration. Imports the judge's scoring, the data and store layers and rater.core; never Textual."""
