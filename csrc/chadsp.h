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

/* Number of RMS frames of a signal of n samples (librosa's count; 0 when the (padded) signal is shorter
 * than a frame). CHADSP_EINVAL for n < 0, frame_length < 1 or hop_length < 1. */
int64_t chadsp_rms_frames(int64_t n, int64_t frame_length, int64_t hop_length, int center);

/* Frame RMS in dB relative to the loudest frame (0 dB), power floor 1e-10 (amplitude 1e-5), not clipped.
 * out has n_frames = chadsp_rms_frames(...) entries. */
int chadsp_rms_db(const float *y, int64_t n, int64_t frame_length, int64_t hop_length, int center,
                  float *out, int64_t n_frames);

/* Non-silent sample intervals [start, end) as librosa.effects.split (centred frames, top_db > 0).
 * intervals: room for capacity >= (n_frames + 1) / 2 pairs. Returns the number of intervals, or < 0. */
int64_t chadsp_split(const float *y, int64_t n, double top_db, int64_t frame_length, int64_t hop_length,
                     int64_t *intervals, int64_t capacity);

/* Left-to-right merge of sorted, non-overlapping intervals (n pairs), then length filtering.
 * out: room for n pairs. Returns the number of fragments written, or < 0. */
int64_t chadsp_merge_fragments(const int64_t *intervals, int64_t n, int64_t max_pause, int64_t min_len,
                               int64_t max_len, int64_t *out);


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

/* Element types of a packed store of rows (chadsp_rerank_ranges). */
enum chadsp_dtype { CHADSP_F32 = 0, CHADSP_F16 = 1, CHADSP_I8 = 2 };

/* chadsp_rerank over row ranges of one packed store: candidate k is the rows
 * [starts[k], starts[k] + lengths[k]) of data (n_rows rows of d elements of type dtype: float32; IEEE
 * float16; int8, whose row r is data[r] * scales[r] in float32, scales NULL meaning 1), every range
 * within [0, n_rows). Ranges may overlap and come in any order. float32 rows are read in place;
 * float16 and int8 rows are converted to float32 one tile of about 450 lags at a time (per-thread
 * scratch, never the whole store). Scores, lags, the rules for short and empty candidates and *bad are
 * those of chadsp_rerank (a NaN/inf value or scale met), and the scores are those of chadsp_rerank on
 * the float32 values of the rows, exactly. */
int chadsp_rerank_ranges(const float *query, int64_t tq, int64_t d, const void *data, int64_t n_rows, int dtype,
                         const float *scales, const int64_t *starts, const int64_t *lengths, int64_t n,
                         int threads, float *scores, int64_t *lags, int64_t *bad);

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

/* metric: 0 = euclidean (cell cost: squared difference summed over D; result: sqrt of the path sum),
 *         1 = cosine (cell cost: 1 - dot; result: the path sum).
 * band < 0: no band (the full matrix); otherwise cells -band - max(0, n-m) <= j-i <= band + max(0, m-n).
 * DTW of query (n x dim) against each candidate c = data[offsets[c] .. offsets[c+1]) (rows of dim floats);
 * out[c] = +inf for an empty candidate. Candidates run 16 at a time, one per SIMD lane. */
int chadsp_dtw_batch(const float *query, int64_t n, int64_t dim, const float *data, const int64_t *offsets,
                     int64_t n_cand, int64_t band, int metric, int threads, float *out);

/* Subsequence DTW of query (n x dim) inside target (m x dim): the best path from row 0 to row n-1 with a
 * free start and end column. band < 0: Mueller's subsequence DTW; band >= 0: the path stays within
 * |(j - start) - i| <= band (requires m >= n - band). end is exclusive. */
int chadsp_subsequence_dtw(const float *query, int64_t n, const float *target, int64_t m, int64_t dim,
                           int64_t band, int metric, int threads, double *cost, int64_t *start, int64_t *end);


/* ====================== end dtw.c ====================== */

#endif /* CHADSP_H */
