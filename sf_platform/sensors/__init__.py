"""Sensors: react to files landing in the bucket."""
