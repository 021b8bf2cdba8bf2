"""Shared state: opening SQLite (``sqlite``) and PostgreSQL (``postgres``), one migration runner
(``migrations``) for every table, and the ``redis:`` section (``redis``)."""
