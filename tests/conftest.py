"""Fixtures shared by every test under tests/: real PostgreSQL, Redis and Milvus Lite servers.

They live in tests/fixtures/services.py (see its docstring). ``pytest_plugins`` may only be set in
the repository-root conftest, so they are imported here instead, which makes them visible to all
tests below this directory.
"""

from tests.fixtures.services import (  # noqa: F401 - imported so pytest sees the fixtures
    milvus_lite_server,
    postgres_server,
    redis_server,
    services_dir,
)
