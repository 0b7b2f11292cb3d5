"""Dagster assets built from the table registry: thin wiring over the hops in ``sf_platform.hops``."""
