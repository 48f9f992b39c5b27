/* silence.c: frame RMS in dB, silence splitting and fragment merging (DESIGN.md section 2, "Silence").
 *
 * Frame convention (librosa.feature.rms with y=): with center, the signal is padded with
 * frame_length / 2 zeros on each side; frame k covers the padded samples [k*hop, k*hop + frame_length).
 * Frame power is the mean of the squares, accumulated in double (librosa accumulates in float32).
 *
 * Speed: frame starts and lengths are multiples of g = gcd(frame_length, hop_length). When a frame is
 * at most BLOCKS_MAX blocks of g samples, each sample is squared once into a block sum and a frame sums
 * its frame_length / g blocks (one pass over the signal); otherwise every frame is summed directly.
 * Single-threaded: the pass is memory-bound and takes about a millisecond for 4 minutes of 16 kHz audio.
 */
#include <math.h>
#include <stdlib.h>

#include "chadsp.h"

/* The power floor: librosa.amplitude_to_db's default amin = 1e-5, squared (= power_to_db's amin = 1e-10).
 * librosa.effects.split uses it too; it decides which frames of a quiet recording count as silent. */
#define AMIN2 1e-10
#define BLOCKS_MAX 64

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int64_t chadsp_rms_frames(int64_t n, int64_t frame_length, int64_t hop_length, int center)
{
    if (n < 0 || frame_length < 1 || hop_length < 1) return CHADSP_EINVAL;
    int64_t padded = center ? n + 2 * (frame_length / 2) : n;
    if (padded < frame_length) return 0;
    return 1 + (padded - frame_length) / hop_length;
}

/* Sum of y[lo:hi]^2 (indices clipped to [0, n)) in double. */
static double sumsq(const float *y, int64_t n, int64_t lo, int64_t hi)
{
    if (lo < 0) lo = 0;
    if (hi > n) hi = n;
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (int64_t i = lo; i < hi; i++) {
        double v = (double)y[i];
        s += v * v;
    }
    return s;
}

/* Mean square of every frame into power[0:n_frames]. Returns 0 or CHADSP_ENOMEM. */
static int frame_power(const float *y, int64_t n, int64_t fl, int64_t hop, int center,
                       double *power, int64_t n_frames)
{
    const int64_t pad = center ? fl / 2 : 0;
    const int64_t g = gcd64(fl, hop);
    const int64_t q = fl / g, r = hop / g;
    const double inv = 1.0 / (double)fl;
    if (n_frames <= 0) return 0;
    if (q > BLOCKS_MAX) {
        for (int64_t k = 0; k < n_frames; k++) {
            int64_t lo = k * hop - pad;
            power[k] = sumsq(y, n, lo, lo + fl) * inv;
        }
        return 0;
    }
    const int64_t nb = ((n_frames - 1) * hop + fl) / g;   /* blocks of g padded samples */
    double *blk = malloc((size_t)nb * sizeof(double));
    if (!blk) return CHADSP_ENOMEM;
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * g - pad;
        blk[b] = (lo + g <= 0 || lo >= n) ? 0.0 : sumsq(y, n, lo, lo + g);
    }
    for (int64_t k = 0; k < n_frames; k++) {
        const double *f = blk + k * r;
        double s = 0.0;
        for (int64_t j = 0; j < q; j++) s += f[j];
        power[k] = s * inv;
    }
    free(blk);
    return 0;
}

int chadsp_rms_db(const float *y, int64_t n, int64_t frame_length, int64_t hop_length, int center,
                  float *out, int64_t n_frames)
{
    if (!y && n > 0) return CHADSP_EINVAL;
    if (n_frames != chadsp_rms_frames(n, frame_length, hop_length, center)) return CHADSP_EINVAL;
    if (n_frames == 0) return 0;
    double *p = malloc((size_t)n_frames * sizeof(double));
    if (!p) return CHADSP_ENOMEM;
    int rc = frame_power(y, n, frame_length, hop_length, center, p, n_frames);
    if (rc == 0) {
        double pmax = AMIN2;
        for (int64_t k = 0; k < n_frames; k++) pmax = p[k] > pmax ? p[k] : pmax;
        /* one log of the ratio (x / x == 1 exactly): the loudest frame is exactly 0 dB */
        for (int64_t k = 0; k < n_frames; k++)
            out[k] = (float)(10.0 * log10((p[k] > AMIN2 ? p[k] : AMIN2) / pmax));
    }
    free(p);
    return rc;
}

int64_t chadsp_split(const float *y, int64_t n, double top_db, int64_t frame_length, int64_t hop_length,
                     int64_t *intervals, int64_t capacity)
{
    const int64_t nf = chadsp_rms_frames(n, frame_length, hop_length, 1);
    if (nf < 0 || (!y && n > 0) || !(top_db > 0.0)) return CHADSP_EINVAL;
    if (capacity < (nf + 1) / 2) return CHADSP_EINVAL;
    if (nf == 0) return 0;
    double *p = malloc((size_t)nf * sizeof(double));
    if (!p) return CHADSP_ENOMEM;
    int rc = frame_power(y, n, frame_length, hop_length, 1, p, nf);
    if (rc != 0) {
        free(p);
        return rc;
    }
    /* Non-silent: 10 log10(max(amin^2, p)) - 10 log10(max(amin^2, pmax)) > -top_db, in the power domain. */
    double pmax = AMIN2;
    for (int64_t k = 0; k < nf; k++) pmax = p[k] > pmax ? p[k] : pmax;
    const double thr = pmax * pow(10.0, -top_db / 10.0);
    int64_t m = 0, start = -1;
    for (int64_t k = 0; k <= nf; k++) {
        int loud = k < nf && (p[k] > AMIN2 ? p[k] : AMIN2) > thr;
        if (loud && start < 0) {
            start = k;
        } else if (!loud && start >= 0) {
            /* frames to samples (frame * hop, no centring offset), clipped to the signal: librosa's rule */
            int64_t a = start * hop_length, b = k * hop_length;
            intervals[2 * m] = a < n ? a : n;
            intervals[2 * m + 1] = b < n ? b : n;
            m++;
            start = -1;
        }
    }
    free(p);
    return m;
}

int64_t chadsp_merge_fragments(const int64_t *intervals, int64_t n, int64_t max_pause, int64_t min_len,
                               int64_t max_len, int64_t *out)
{
    if (n < 0 || max_pause < 0 || min_len < 0 || max_len < min_len) return CHADSP_EINVAL;
    if (n == 0) return 0;
    int64_t m = 0;
    int64_t cs = intervals[0], ce = intervals[1];
    for (int64_t i = 1; i <= n; i++) {
        if (i < n) {
            const int64_t s = intervals[2 * i], e = intervals[2 * i + 1];
            if (s - ce <= max_pause && e - cs <= max_len) {
                ce = e;
                continue;
            }
            if (ce - cs >= min_len && ce - cs <= max_len) {
                out[2 * m] = cs;
                out[2 * m + 1] = ce;
                m++;
            }
            cs = s;
            ce = e;
        } else if (ce - cs >= min_len && ce - cs <= max_len) {
            out[2 * m] = cs;
            out[2 * m + 1] = ce;
            m++;
        }
    }
    return m;
}
