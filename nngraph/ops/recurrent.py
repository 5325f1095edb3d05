"""Recurrent operators (issue #6): filled in by their records."""
