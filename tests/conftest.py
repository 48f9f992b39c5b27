import os

# Idle OpenMP threads sleep instead of spinning: torch and chadsp each have an OpenMP pool, and on a
# 2-core machine spinning pools starve each other (small torch ops ran 10-100x slower). Set before
# torch or chadsp load their runtimes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from hypothesis import HealthCheck, settings


# chadsp's kernel tests run once per backend (their modules use this fixture). The numba backend is not run
# under AddressSanitizer (CI's second pass preloads libasan for the C kernels only).
@pytest.fixture(scope="module", params=["c", pytest.param("numba", marks=pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""), reason="numba is not run under AddressSanitizer"))])
def chadsp_backend(request):
    import chadsp
    try:
        old = chadsp.set_backend(request.param)
    except ImportError as exc:
        pytest.skip(f"chadsp backend {request.param} unavailable: {exc}")
    yield request.param
    chadsp.set_backend(old)


@pytest.fixture(scope="module")
def one_faiss_thread():
    """FAISS on one thread for the module (tiny test indexes: one thread is faster, and the machine is
    shared); the previous count is restored after it."""
    import faiss
    n = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(n)


# numba kernels compile on first call: no deadline. "asan" is the profile CI uses for the
# AddressSanitizer re-run of the kernel tests (fewer examples; the build is slower).
settings.register_profile("default", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("asan", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
