"""Helpers shared by the unit and integration tests (plugin tasks, runs, trainings)."""
