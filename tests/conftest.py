import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings

# CI keeps example counts modest; locally the properties run with more examples.
settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("dev", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config):
    # The parse cache (engine/parsecache.py) lives in a directory of the session's own, never
    # in the user's ~/.cache; every test and every CLI it starts shares it.
    config.konverge_cache = tempfile.mkdtemp(prefix="konverge-cache-")
    os.environ["KONVERGE_CACHE_DIR"] = config.konverge_cache


def pytest_unconfigure(config):
    shutil.rmtree(config.konverge_cache, ignore_errors=True)
