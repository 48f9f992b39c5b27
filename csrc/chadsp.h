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

/* pearson.c. The similarity at lag l of query (tq x d) with target (tt x d) is the Pearson correlation
 * of query.ravel() and target[l:l+tq].ravel(); a block whose variance is <= 1e-10 of its mean square
 * (numerically constant) scores 0. Arrays are C-contiguous float32, rows of d values. */

/* out[tt - tq + 1]: the correlation at every lag, computed directly (1 <= tq <= tt). */
int chadsp_pearson_curve(const float *query, int64_t tq, const float *target, int64_t tt, int64_t d,
                         int threads, float *out);

/* For each of the n candidates data[offsets[k] .. offsets[k+1]) (rows of d): the maximum correlation
 * over lags (the first maximum) in scores[k] and its lag in lags[k]. A candidate shorter than the query
 * slides inside the query instead (lag = -offset of the candidate in the query); an empty one scores 0
 * at lag 0. Candidates are split across `threads` OpenMP threads (<= 0: all cores). The data is read
 * in place (it may be a memory map that the caller did not scan): *bad is set to the smallest index of
 * a candidate in which a NaN/inf was met while scoring (its score is then meaningless), or -1. */
int chadsp_rerank(const float *query, int64_t tq, int64_t d, const float *data, const int64_t *offsets,
                  int64_t n, int threads, float *scores, int64_t *lags, int64_t *bad);

/* The correlation curve from FFT numerators: num[l] = dot(qc, target[l:l+tq] - shift) for a centred
 * query qc whose values sum to qsum; out[tt - tq + 1]. */
int chadsp_pearson_normalize(const float *query, int64_t tq, const float *target, int64_t tt, int64_t d,
                             const float *num, double shift, double qsum, float *out);

/* xcorr.c: the peaks of scipy.signal.find_peaks(x, height=, distance=).
 * Local maxima (flat peaks: the middle, rounded down) of x[0..n-1] with x >= height, written to peaks
 * (room for n / 2 + 1), their number to *count. */
int chadsp_local_maxima(const double *x, int64_t n, double height, int64_t *peaks, int64_t *count);

/* keep[k] = whether peaks[k] survives the distance rule: peaks are visited by decreasing priority
 * (order = argsort of their heights, as scipy computes it, read from the end) and each kept peak
 * removes the peaks closer than `distance` samples. */
int chadsp_select_by_distance(const int64_t *peaks, int64_t npeaks, const int64_t *order, int64_t distance,
                              uint8_t *keep);

/* ====================== end xcorr.c / pearson.c ====================== */



/* ====================== dtw.c: banded and subsequence DTW ====================== */


/* ====================== end dtw.c ====================== */

#endif /* CHADSP_H */
