"""The Redis cache backend production uses (CACHE_URL=redis://...), on the CI machine's Redis."""

import os

import pytest
import redis

from config.cache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_cache():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error})")
    backend = RedisCache(REDIS_URL, {"KEY_PREFIX": "test-cache-backend"})
    yield backend
    backend.clear()


def test_values_round_trip_and_expire_as_in_djangos_backend(redis_cache):
    redis_cache.set("figures", {"n": 3, "names": ["dns"]}, 60)
    assert redis_cache.get("figures") == {"n": 3, "names": ["dns"]}
    assert redis_cache.add("generation", 1)
    assert redis_cache.incr("generation") == 2
    redis_cache.set("gone", 1, 0)  # a non-positive timeout deletes, as Django's does
    assert redis_cache.get("gone") is None


def test_one_client_serves_every_operation(redis_cache):
    redis_cache.set("a", 1)
    first = redis_cache._cache.get_client(write=True)
    redis_cache.get("a")
    assert redis_cache._cache.get_client(write=True) is first
    assert redis_cache._cache.get_client(write=False) is first  # a single server: one pool for both
