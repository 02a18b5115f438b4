"""`python -m rater.cli`: the same as the `rater` command."""

from rater.cli import main

main()
