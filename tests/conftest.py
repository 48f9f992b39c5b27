import os

from hypothesis import HealthCheck, settings

# numba kernels compile on first call: no deadline. "asan" is the profile CI uses for the
# AddressSanitizer re-run of the kernel tests (fewer examples; the build is slower).
settings.register_profile("default", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("asan", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
