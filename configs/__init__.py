"""Experiment configs: one ``get_config(arg=None) -> ml_collections.ConfigDict`` per file."""
