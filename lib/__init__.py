"""Helpers with no models and no product logic, shared by the Django apps (errors, beat rows)."""
