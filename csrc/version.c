#include "chadsp.h"

/* ABI version of the compiled core, checked by chadsp/__init__.py against the Python layer. */
int chadsp_abi_version(void) { return 1; }

/* Number of threads OpenMP would use for threads <= 0 (all cores). */
int chadsp_max_threads(void)
{
#ifdef _OPENMP
    extern int omp_get_max_threads(void);
    return omp_get_max_threads();
#else
    return 1;
#endif
}
