"""Benchmarks: `python -m bench NAME` prints one JSON object with side-by-side medians."""
