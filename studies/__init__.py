"""Bundled study definitions (TOML). `tuner STUDY` finds them by file name."""
