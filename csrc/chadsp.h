/* chadsp.h: the public C API of chad's signal-processing core.
 *
 * C99, no Python headers, no global state. Every function takes plain pointers and lengths that the
 * Python layer (the chadsp package) has already checked; they never allocate in inner loops, and the batched
 * ones take an OpenMP thread count (threads <= 0: all cores).
 * Return codes: 0 on success, CHADSP_ENOMEM (-1) when scratch allocation fails, CHADSP_EINVAL (-2) for
 * an argument the Python layer should have rejected (a defensive check, never expected).
 *
 * This header is parsed by cffi (chadsp/_build.py strips preprocessor lines and comments): keep
 * declarations plain C (no `restrict`, no inline functions, no macros used inside declarations).
 * Sections: one per source file, in the order of DESIGN.md section 2.
 */
#ifndef CHADSP_H
#define CHADSP_H

#include <stdint.h>
#include <stddef.h>

#define CHADSP_ENOMEM (-1)
#define CHADSP_EINVAL (-2)

int chadsp_abi_version(void);
int chadsp_max_threads(void);

/* ====================== silence.c: RMS, silence masking, splitting, merging ====================== */


/* ====================== end silence.c ====================== */



/* ====================== xcorr.c / pearson.c: correlation, peaks, re-ranking ====================== */


/* ====================== end xcorr.c / pearson.c ====================== */



/* ====================== dtw.c: banded and subsequence DTW ====================== */


/* ====================== end dtw.c ====================== */

#endif /* CHADSP_H */
