"""The plain core: what raters see and return, the error hierarchy, the published prompt format, user paths and
plugin loading. Imports nothing else of rater."""
