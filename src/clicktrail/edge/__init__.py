"""edge layer."""
