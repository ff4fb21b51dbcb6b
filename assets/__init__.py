"""Data files shipped with DL Playground (presets, ...), found through importlib.resources."""
