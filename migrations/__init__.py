"""Alembic migrations of rater's database; installed as `rater.migrations` (package-dir mapping in pyproject)."""
