"""A throwaway PostgreSQL database per test on the machine's server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import os
import subprocess

PG_HOST, PG_PORT = "127.0.0.1", 5432


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres", "-v",
                    "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True, timeout=60)


def create_database() -> str:
    name = "interlock_test_" + os.urandom(6).hex()
    _psql(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def url(name: str, port: int = PG_PORT) -> str:
    return f"postgresql://postgres@{PG_HOST}:{port}/{name}"
