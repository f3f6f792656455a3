"""WAXS pipeline: caking (integrate), reflections, derived quantities and statistics."""
