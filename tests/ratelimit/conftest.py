import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.engines import Etcd, Redis  # noqa: E402


@pytest.fixture(scope="module")
def redis_engine():
    with Redis() as r:
        yield r


@pytest.fixture
def redis_db(redis_engine):
    """The module's Redis, emptied for each test."""
    redis_engine.flushall()
    return redis_engine


@pytest.fixture(scope="module")
def etcd_engine():
    with Etcd() as e:
        yield e
