"""Fixtures of the engine's tests that need real servers (tests/remote_env.py)."""

from remote_env import bazel_cache, redis_dir, redis_server, start_redis

__all__ = ["bazel_cache", "redis_dir", "redis_server", "start_redis"]
