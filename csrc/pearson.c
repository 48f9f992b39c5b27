/* pearson.c: sliding Pearson correlation of fingerprint blocks (direct), its FFT finishing step, and
 * batched re-ranking (max over lags against many candidates: row ranges of one packed store of float32,
 * float16 or int8 rows).
 *
 * The similarity at lag l of a query Q (tq x d) with a target T (tt x d) is the Pearson correlation of
 * Q.ravel() and T[l:l+tq].ravel() (n = tq*d values); a block with zero variance scores 0.
 *
 * How it is computed:
 * - The query is centred once (in double, stored as float32 qc); its sum of squares qss is exact.
 *   The numerator at lag l is dot(qc, T_l) - mean(T_l) * sum(qc): the second term removes what
 *   float32 rounding left of qc's mean, so the numerator is the centred product.
 * - The dot products: a register-blocked micro-kernel (a GEMM of the query block with a tile of target
 *   rows that keeps only the diagonal sums). For a block of NL consecutive lags and one chunk of VW
 *   feature columns it walks the query rows i = 0..tq-1 keeping a rotating window of NL target rows
 *   (rows i..i+NL-1 of the block) in vector registers: every step loads one new target row chunk and
 *   one query row chunk and does NL fused multiply-adds, one per lag. The lane sums of the NL
 *   accumulators are reduced once per block (with AVX-512: one transposing reduction of 16 vectors).
 *   The Tq x Ts matrix of products never exists in memory.
 *   1-D signals (d == 1) go through the same kernel: the lags r, r + 16, r + 32, ... are the row lags
 *   of the query read as rows of 16 samples (zero-padded) against the signal read as rows of 16
 *   samples starting at sample r, for r = 0..15.
 * - Store rows of another type (float16; int8 times a per-row float32 scale) are converted to float32
 *   one tile (segment) at a time (O(SEGD + tq) rows per thread), never the whole store, as the blocks
 *   reach them; float32 rows are read in place. The row statistics are taken on the way, just before
 *   the first block that reads the rows (which then finds them in L1).
 * - While a candidate is scored, the next one is prefetched into cache a few lines at a time between
 *   the FMAs, so that the first pass over it (row statistics) does not wait on memory.
 * - Window sums and sums of squares of the target blocks come from per-row sums, summed exactly at the
 *   start of every run of max(tq, 64) lags and updated by add/subtract (in double) within it. The
 *   per-row sums are first taken in float32 lanes (fast); where a window's variance is within REFINE
 *   of its mean square (near-constant blocks), or a value is not finite, the segment's row sums are
 *   taken again in double, so that rounding stays relative to the local blocks (a constant block gets
 *   an exactly zero variance) and NaN/inf are told apart from float32 overflow.
 * - Targets are processed in segments of SEGD lags (SEG for 1-D signals), the same for every row type
 *   (equal rows, equal scores): scratch is O(SEG + tq) per thread, never proportional to the total
 *   candidate size.
 */
#include "chadsp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

/* Vector width (floats) and lags per block, chosen so that NL accumulators + NL window registers + 1
 * query register fit the register file (32 zmm with AVX-512; 16 ymm/xmm otherwise). */
#if defined(__AVX512F__)
#define VW 16
#define NL 14
#elif defined(__AVX__)
#define VW 8
#define NL 7
#elif defined(__aarch64__)
#define VW 4
#define NL 14
#else
#define VW 4
#define NL 7
#endif
#define RW 16       /* 1-D signals are read as rows of RW samples (see segment) */
#define SEG (RW * NL * 10)   /* lags per segment of a 1-D signal (whole blocks): scratch size */
#define SEGD (NL * (448 / NL))   /* lags per segment of rows (d > 1; whole blocks, about 448) */

/* A block is numerically constant (scores 0) when its variance is <= ZERO_VAR_REL times its mean square. */
#define ZERO_VAR_REL 1e-10
/* Fast (float32) row sums are kept for windows whose variance exceeds REFINE times their mean square:
 * their relative error (~1e-6 of the mean square) is then below 1e-4 of the variance. */
#define REFINE 1e-2

typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4), may_alias));
typedef float vhu __attribute__((vector_size(VW * 2), aligned(4), may_alias));   /* VW/2 floats */
typedef double vd __attribute__((vector_size(VW * 4)));                         /* VW/2 doubles */

static inline vf loadu(const float *p) { return *(const vfu *)p; }
static inline void storeu(float *p, vf x) { *(vfu *)p = x; }

static inline double hsum(vf a)
{
#if defined(__AVX512F__)
    const __m512 x = (__m512)a;
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)),
                                              _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))));
#endif
    double s = 0.0;
    for (int k = 0; k < VW; k++) s += (double)a[k];
    return s;
}

/* the sum of the lanes, in float32 (row statistics: fast path) */
static inline float hsum_f(vf a)
{
#if defined(__AVX512F__)
    return _mm512_reduce_add_ps((__m512)a);
#endif
    float s = 0.f;
    for (int k = 0; k < VW; k++) s += a[k];
    return s;
}

#if defined(__AVX512F__)
/* lane k = the sum of the 16 lanes of v[k], k = 0..15 (a transposing reduction: 45 instructions) */
static inline __m512 hsum16(const __m512 *v)
{
    __m512 x[8], z[4], w[2];
    for (int k = 0; k < 8; k++)     /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        x[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
    for (int k = 0; k < 4; k++)     /* per 128-bit lane: the lane sums of 4 vectors */
        z[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x[2 * k]), _mm512_castps_pd(x[2 * k + 1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x[2 * k]), _mm512_castps_pd(x[2 * k + 1]))));
    for (int k = 0; k < 2; k++)     /* 128-bit lanes summed in pairs */
        w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * k], z[2 * k + 1], 0x88), _mm512_shuffle_f32x4(z[2 * k], z[2 * k + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* dots for NL lags: out[v] = sum_i sum_c qc[i, c] * t[v + i, c], rows 0 .. NL + tq - 2 of t readable. */
static void dots_block(const float *qc, int64_t tq, const float *t, int64_t d, double *out,
                       const char *pf, int64_t pf_lines)
{
    vf acc[NL];
    for (int v = 0; v < NL; v++) acc[v] = (vf){0};
    const int64_t dv = d - d % VW;
    const int64_t nchunks = dv / VW > 0 ? dv / VW : 1;
    const int64_t pf_per_chunk = (pf_lines + nchunks - 1) / nchunks;
    for (int64_t c = 0; c < dv; c += VW) {
        const float *tp = t + c, *qp = qc + c;
        /* a few prefetches (of the next candidate) between the chunks' FMAs */
        for (int64_t k = 0; k < pf_per_chunk && pf_lines > 0; k++, pf_lines--, pf += 64) __builtin_prefetch(pf, 0, 2);
        vf w[NL];
        w[NL - 1] = (vf){0};
        for (int k = 0; k < NL - 1; k++) w[k] = loadu(tp + k * d);
        int64_t i = 0;
        for (; i + NL <= tq; i += NL) {
#pragma GCC unroll 16
            for (int s = 0; s < NL; s++) {
                w[(s + NL - 1) % NL] = loadu(tp + (i + s + NL - 1) * d);
                const vf qv = loadu(qp + (i + s) * d);
#pragma GCC unroll 16
                for (int v = 0; v < NL; v++) acc[v] += qv * w[(s + v) % NL];
            }
        }
        /* the remaining tq - i < NL query rows continue the same rotation */
#pragma GCC unroll 16
        for (int s = 0; s < NL - 1; s++) {
            if (i + s < tq) {
                w[(s + NL - 1) % NL] = loadu(tp + (i + s + NL - 1) * d);
                const vf qv = loadu(qp + (i + s) * d);
#pragma GCC unroll 16
                for (int v = 0; v < NL; v++) acc[v] += qv * w[(s + v) % NL];
            }
        }
    }
#if defined(__AVX512F__) && NL <= 16
    {
        __m512 a16[16];
        for (int v = 0; v < 16; v++) a16[v] = v < NL ? (__m512)acc[v] : _mm512_setzero_ps();
        float o[16];
        _mm512_storeu_ps(o, hsum16(a16));
        for (int v = 0; v < NL; v++) out[v] = (double)o[v];
    }
#else
    for (int v = 0; v < NL; v++) out[v] = hsum(acc[v]);
#endif
    if (dv < d) {   /* feature columns beyond the last full vector */
        for (int v = 0; v < NL; v++) {
            double s = 0.0;
            for (int64_t i = 0; i < tq; i++) {
                const float *qr = qc + i * d, *tr = t + (v + i) * d;
                float p = 0.f;
                for (int64_t c = dv; c < d; c++) p += qr[c] * tr[c];
                s += (double)p;
            }
            out[v] += s;
        }
    }
}

#if defined(__AVX512F__)
/* the sums of the 8 lanes of v[0..7], as one vector (a transposing reduction) */
static inline __m512d hsum8(const __m512d *v)
{
    __m512d p[4], h[2];
    for (int k = 0; k < 4; k++)     /* lanes: (v[2k], v[2k+1]) alternating, pairs summed */
        p[k] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_pd(v[2 * k], v[2 * k + 1]));
    for (int k = 0; k < 2; k++)     /* 128-bit lanes: (p[2k] even, odd halves) + ... */
        h[k] = _mm512_add_pd(_mm512_shuffle_f64x2(p[2 * k], p[2 * k + 1], 0x88),
                             _mm512_shuffle_f64x2(p[2 * k], p[2 * k + 1], 0xdd));
    return _mm512_add_pd(_mm512_shuffle_f64x2(h[0], h[1], 0x88), _mm512_shuffle_f64x2(h[0], h[1], 0xdd));
}
#endif

/* Exact row statistics: rs[r] = sum_c t[r, c], rq[r] = sum_c t[r, c]^2 in double, VW lanes at a time
 * (as 2 x VW/2 doubles). */
static void row_sums(const float *t, int64_t nrows, int64_t d, double *rs, double *rq)
{
    if (d == 1) {
        for (int64_t r = 0; r < nrows; r++) { const double x = (double)t[r]; rs[r] = x; rq[r] = x * x; }
        return;
    }
#if defined(__AVX512F__)
    if (d % 8 == 0) {           /* 8 rows at a time, 8 floats -> 8 doubles per instruction */
        int64_t r = 0;
        for (; r + 8 <= nrows; r += 8) {
            __m512d a[8], b[8];
            for (int k = 0; k < 8; k++) { a[k] = _mm512_setzero_pd(); b[k] = _mm512_setzero_pd(); }
            for (int64_t c = 0; c < d; c += 8) {
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) {
                    const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(t + (r + k) * d + c));
                    a[k] = _mm512_add_pd(a[k], x);
                    b[k] = _mm512_fmadd_pd(x, x, b[k]);
                }
            }
            _mm512_storeu_pd(rs + r, hsum8(a));
            _mm512_storeu_pd(rq + r, hsum8(b));
        }
        for (; r < nrows; r++) {
            const float *row = t + r * d;
            __m512d a0 = _mm512_setzero_pd(), b0 = _mm512_setzero_pd();
            for (int64_t c = 0; c < d; c += 8) {
                const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(row + c));
                a0 = _mm512_add_pd(a0, x);
                b0 = _mm512_fmadd_pd(x, x, b0);
            }
            rs[r] = _mm512_reduce_add_pd(a0);
            rq[r] = _mm512_reduce_add_pd(b0);
        }
        return;
    }
#endif
    const int64_t dv = d - d % VW;
    for (int64_t r = 0; r < nrows; r++) {
        const float *row = t + r * d;
        vd a0 = (vd){0}, a1 = (vd){0}, b0 = (vd){0}, b1 = (vd){0};
        for (int64_t c = 0; c < dv; c += VW) {
            const vd x0 = __builtin_convertvector(*(const vhu *)(row + c), vd);
            const vd x1 = __builtin_convertvector(*(const vhu *)(row + c + VW / 2), vd);
            a0 += x0; a1 += x1;
            b0 += x0 * x0; b1 += x1 * x1;
        }
        a0 += a1; b0 += b1;
        double sa = 0.0, sb = 0.0;
        for (int k = 0; k < VW / 2; k++) { sa += a0[k]; sb += b0[k]; }
        for (int64_t c = dv; c < d; c++) { const double x = (double)row[c]; sa += x; sb += x * x; }
        rs[r] = sa; rq[r] = sb;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Store rows: float32 (read in place), float16, int8 times a per-row scale (converted per tile). */
typedef struct {
    const void *data;       /* rows of d elements of `dtype`, row-major */
    int dtype;              /* CHADSP_F32, CHADSP_F16, CHADSP_I8 */
    const float *scales;    /* CHADSP_I8: the scale of each row (NULL: 1) */
    int64_t d;
    int64_t n_rows;         /* rows in the store: blocks may read rows past a candidate's end up to here */
} store_t;

static int64_t elem_size(int dtype) { return dtype == CHADSP_F32 ? 4 : dtype == CHADSP_F16 ? 2 : 1; }

/* IEEE binary16 -> binary32, exactly (subnormals, inf and NaN included) */
static inline float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0) {
        bits = sign;
    } else {                    /* subnormal: m * 2^-24, normalised */
        uint32_t k = 0;
        while (!(m & 0x400u)) { m <<= 1; k++; }
        bits = sign | ((113u - k) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* VW values of a row, as float32 */
static inline vf load_f16(const uint16_t *p)
{
#if defined(__AVX512F__)
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#elif defined(__F16C__) && VW == 8
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    vf x;
    for (int k = 0; k < VW; k++) x[k] = half_to_float(p[k]);
    return x;
#endif
}

static inline vf load_i8(const int8_t *p, float scale)
{
#if defined(__AVX512F__)
    return (vf)_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p))),
                             _mm512_set1_ps(scale));
#else
    vf x;
    for (int k = 0; k < VW; k++) x[k] = (float)p[k] * scale;
    return x;
#endif
}

/* Fast row statistics of float32 rows (float32 lanes, see REFINE); exact for d == 1. With out != NULL,
 * the rows come from the store (st, first row r0) and are written to out as float32 on the way. */
static inline __attribute__((always_inline)) void
rows_pass(const float *t, const store_t *st, int dtype, int64_t r0, int64_t nrows, int64_t d, float *out,
          double *rs, double *rq)
{
    const int64_t dv = d - d % VW;
    /* locals, so that the stores to out cannot alias them */
    const uint16_t *const data16 = dtype == CHADSP_F16 ? (const uint16_t *)st->data + r0 * d : NULL;
    const int8_t *const data8 = dtype == CHADSP_I8 ? (const int8_t *)st->data + r0 * d : NULL;
    const float *const scales = dtype == CHADSP_I8 && st->scales ? st->scales + r0 : NULL;
    int64_t r = 0;
#if defined(__AVX512F__)
    /* 8 rows at a time: 16 independent accumulators, one transposing reduction per group */
    if (d % VW == 0) {
        for (; r + 8 <= nrows; r += 8) {
            __m512 acc[16];
            float scl[8];
            for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
            for (int k = 0; k < 8; k++) scl[k] = scales ? scales[r + k] : 1.f;
            const int64_t ro = r * d;
            for (int64_t c = 0; c < d; c += VW) {
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) {
                    const vf x = dtype == CHADSP_F32 ? loadu(t + ro + k * d + c)
                               : dtype == CHADSP_F16 ? load_f16(data16 + ro + k * d + c)
                               : load_i8(data8 + ro + k * d + c, scl[k]);
                    if (out) storeu(out + ro + k * d + c, x);
                    acc[k] = _mm512_add_ps(acc[k], (__m512)x);
                    acc[8 + k] = _mm512_fmadd_ps((__m512)x, (__m512)x, acc[8 + k]);
                }
            }
            float o[16];
            _mm512_storeu_ps(o, hsum16(acc));
            for (int k = 0; k < 8; k++) { rs[r + k] = (double)o[k]; rq[r + k] = (double)o[8 + k]; }
        }
    }
#endif
    for (; r < nrows; r++) {
        const float *row32 = dtype == CHADSP_F32 ? t + r * d : NULL;
        const uint16_t *row16 = dtype == CHADSP_F16 ? data16 + r * d : NULL;
        const int8_t *row8 = dtype == CHADSP_I8 ? data8 + r * d : NULL;
        const float scale = scales ? scales[r] : 1.f;
        float *o = out ? out + r * d : NULL;
        if (d == 1) {
            const float x = dtype == CHADSP_F32 ? row32[0] : dtype == CHADSP_F16 ? half_to_float(row16[0])
                                                                                 : (float)row8[0] * scale;
            if (o) o[0] = x;
            rs[r] = (double)x; rq[r] = (double)x * (double)x;
            continue;
        }
        vf a = (vf){0}, b = (vf){0};
        for (int64_t c = 0; c < dv; c += VW) {
            const vf x = dtype == CHADSP_F32 ? loadu(row32 + c) : dtype == CHADSP_F16 ? load_f16(row16 + c)
                                                                                      : load_i8(row8 + c, scale);
            if (o) storeu(o + c, x);
            a += x;
            b += x * x;
        }
        double sa = (double)hsum_f(a), sb = (double)hsum_f(b);
        for (int64_t c = dv; c < d; c++) {
            const float x = dtype == CHADSP_F32 ? row32[c] : dtype == CHADSP_F16 ? half_to_float(row16[c])
                                                                                 : (float)row8[c] * scale;
            if (o) o[c] = x;
            sa += (double)x; sb += (double)x * (double)x;
        }
        rs[r] = sa; rq[r] = sb;
    }
}

static void row_stats_fast(const float *t, int64_t nrows, int64_t d, double *rs, double *rq)
{
    rows_pass(t, NULL, CHADSP_F32, 0, nrows, d, NULL, rs, rq);
}

/* rows r0 .. r0 + nrows - 1 of the store as float32 into out, with their fast row statistics */
static void convert_rows(const store_t *st, int64_t r0, int64_t nrows, float *out, double *rs, double *rq)
{
    if (st->dtype == CHADSP_F16) rows_pass(NULL, st, CHADSP_F16, r0, nrows, st->d, out, rs, rq);
    else if (st->dtype == CHADSP_I8) rows_pass(NULL, st, CHADSP_I8, r0, nrows, st->d, out, rs, rq);
    else rows_pass((const float *)st->data + r0 * st->d, NULL, CHADSP_F32, 0, nrows, st->d, out, rs, rq);
}

/* *s = sum of x[0..n-1], *sq = sum of squares, in double (4 partial sums: no single latency chain) */
static void sums(const float *x, int64_t n, double *s, double *sq)
{
    double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++) { const double v = (double)x[k + j]; a[j] += v; b[j] += v * v; }
    for (; k < n; k++) { const double v = (double)x[k]; a[0] += v; b[0] += v * v; }
    *s = (a[0] + a[1]) + (a[2] + a[3]);
    *sq = (b[0] + b[1]) + (b[2] + b[3]);
}

/* sum of (x - m)^2 in double */
static double centred_ss(const float *x, int64_t n, double m)
{
    double a[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++) { const double c = (double)x[k + j] - m; a[j] += c * c; }
    for (; k < n; k++) { const double c = (double)x[k] - m; a[0] += c * c; }
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* ---------------------------------------------------------------------------------------------- */
typedef struct {            /* a prepared query */
    const float *qc;        /* centred, tq x d */
    int64_t tq, d;
    double qsum;            /* sum of qc as stored (float32 rounding of the centring) */
    double qss;             /* exact centred sum of squares */
    int constant;           /* zero variance: every score is 0 */
} query_t;

typedef struct {            /* per-thread scratch, sized for SEG lags */
    double *rs, *rq;        /* row sums / sums of squares: SEG + tq - 1 rows */
    double *dots;           /* SEG + block: dot products, then correlations */
    double *ws, *wq;        /* SEG: window sums and sums of squares */
    float *pad;             /* (block + tq - 1) x d, for the last partial block */
    float *qbuf;            /* tq x d: a short candidate centred, when the roles swap */
    float *tile;            /* tile_rows x d: converted rows (float16/int8 stores) */
    void *raw[3];           /* what pad, qbuf, tile were allocated as */
    int bad;                /* a non-finite value was met */
    const char *pf;         /* memory to prefetch while computing (the next candidate), pf_bytes long */
    int64_t pf_bytes;
} scratch_t;

/* n floats aligned to a cache line (whole-line vector loads); free the pointer stored in *raw */
static float *alloc_floats(int64_t n, void **raw)
{
    *raw = malloc(sizeof(float) * (size_t)n + 64);
    return *raw ? (float *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63) : NULL;
}

static int64_t block_lags(int64_t d) { return d == 1 ? (int64_t)RW * NL : NL; }

/* floats of a prepared query buffer: 1-D queries are zero-padded to whole rows of RW */
static int64_t qbuf_len(int64_t tq, int64_t d) { return d == 1 ? (tq + RW - 1) / RW * RW : tq * d; }

/* Lags per segment. Every path (float32 in place, converted tiles, curves) cuts a target into the same
 * segments, so equal rows give equal scores whatever their type in the store. */
static int64_t seg_lags(int64_t d) { return d == 1 ? SEG : SEGD; }

/* rows of a tile of one segment, with what its last block reads beyond them */
static int64_t tile_rows(int64_t tq, int64_t d) { return seg_lags(d) + block_lags(d) + qbuf_len(tq, d) / d + RW; }

/* rows that the blocks of a segment of nlag lags read (the last block runs past the segment's rows) */
static int64_t rows_read(int64_t nlag, int64_t tq, int64_t d)
{
    const int64_t bl = block_lags(d), last = (nlag - 1) / bl * bl;
    return last + (d == 1 ? bl + qbuf_len(tq, 1) - 1 : bl + tq - 1);
}

static int scratch_alloc(scratch_t *s, int64_t tq, int64_t d, int with_qbuf, int with_tile)
{
    const int64_t bl = block_lags(d);
    s->rs = malloc(sizeof(double) * (size_t)(SEG + tq));
    s->rq = malloc(sizeof(double) * (size_t)(SEG + tq));
    s->dots = malloc(sizeof(double) * (size_t)(SEG + bl));
    s->ws = malloc(sizeof(double) * SEG);
    s->wq = malloc(sizeof(double) * SEG);
    s->raw[1] = s->raw[2] = NULL;
    s->pad = alloc_floats((bl + tq + RW) * d, &s->raw[0]);
    s->qbuf = with_qbuf ? alloc_floats(qbuf_len(tq, d), &s->raw[1]) : NULL;
    s->tile = with_tile ? alloc_floats(tile_rows(tq, d) * d, &s->raw[2]) : NULL;
    s->bad = 0;
    s->pf = NULL;
    s->pf_bytes = 0;
    return s->rs && s->rq && s->dots && s->ws && s->wq && s->pad && (s->qbuf || !with_qbuf) && (s->tile || !with_tile);
}

static void scratch_free(scratch_t *s)
{
    free(s->rs); free(s->rq); free(s->dots); free(s->ws); free(s->wq);
    for (int k = 0; k < 3; k++) free(s->raw[k]);
}

/* Centre x (n values) into out (float32; out == x is allowed); sums in double. */
static void prepare_query(const float *x, int64_t tq, int64_t d, float *out, query_t *q)
{
    const int64_t n = tq * d;
    double s, sq;
    sums(x, n, &s, &sq);
    const double m = s / (double)n;
    const double ss = centred_ss(x, n, m);
    double qs = 0.0;
    for (int64_t k = 0; k < n; k++) {
        out[k] = (float)((double)x[k] - m);
        qs += (double)out[k];
    }
    for (int64_t k = n; k < qbuf_len(tq, d); k++) out[k] = 0.f;
    q->qc = out; q->tq = tq; q->d = d; q->qsum = qs; q->qss = ss;
    q->constant = !(ss > ZERO_VAR_REL * sq);
}

/* rv[l] = Pearson r from the dot product rv[l] and the window sums ws[l], wq[l]. */
static void correlations(double *rv, const double *ws, const double *wq, int64_t nlag, double inv_n,
                         double qsum, double qss)
{
    int64_t l = 0;
#if defined(__AVX512F__)
    const __m512d vinv = _mm512_set1_pd(inv_n), vqsum = _mm512_set1_pd(qsum), vqss = _mm512_set1_pd(qss);
    const __m512d eps = _mm512_set1_pd(ZERO_VAR_REL), one = _mm512_set1_pd(1.0), mone = _mm512_set1_pd(-1.0);
    for (; l + 8 <= nlag; l += 8) {
        const __m512d s = _mm512_loadu_pd(ws + l), q = _mm512_loadu_pd(wq + l), dt = _mm512_loadu_pd(rv + l);
        const __m512d m = _mm512_mul_pd(s, vinv);
        const __m512d ss = _mm512_fnmadd_pd(s, m, q);                         /* q - s * s / n */
        const __mmask8 keep = _mm512_cmp_pd_mask(ss, _mm512_mul_pd(eps, q), _CMP_GT_OQ);
        /* 1 / sqrt(qss * ss): the 14-bit estimate and two Newton steps (error ~1e-16; no divide) */
        const __m512d a = _mm512_mul_pd(vqss, _mm512_mask_blend_pd(keep, one, ss));
        __m512d y = _mm512_rsqrt14_pd(a);
        const __m512d ha = _mm512_mul_pd(a, _mm512_set1_pd(0.5)), th = _mm512_set1_pd(1.5);
        y = _mm512_mul_pd(y, _mm512_fnmadd_pd(ha, _mm512_mul_pd(y, y), th));
        y = _mm512_mul_pd(y, _mm512_fnmadd_pd(ha, _mm512_mul_pd(y, y), th));
        __m512d r = _mm512_mul_pd(_mm512_fnmadd_pd(m, vqsum, dt), y);
        r = _mm512_max_pd(_mm512_min_pd(r, one), mone);
        _mm512_storeu_pd(rv + l, _mm512_maskz_mov_pd(keep, r));
    }
#endif
    for (; l < nlag; l++) {
        const double ss = wq[l] - ws[l] * ws[l] * inv_n;
        double r = 0.0;
        if (ss > ZERO_VAR_REL * wq[l]) {
            r = (rv[l] - ws[l] * inv_n * qsum) / sqrt(qss * ss);
            r = r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
        }
        rv[l] = r;
    }
}

/* ws[l], wq[l] = sums of rs, rq over rows l .. l + tq - 1, l < nlag: exact sums at the start of every
 * run of max(tq, 64) lags, add/subtract of the entering and leaving rows within it. Returns whether a
 * window is near-constant (variance <= REFINE of its mean square) or not finite. */
static int window_sums(const double *rs, const double *rq, int64_t nlag, int64_t tq, double inv_n,
                       double *ws, double *wq)
{
    const int64_t run = tq > 64 ? tq : 64;
    for (int64_t l0r = 0; l0r < nlag; l0r += run) {
        double sum = 0.0, sq = 0.0;
        for (int64_t r = l0r; r < l0r + tq; r++) { sum += rs[r]; sq += rq[r]; }
        ws[l0r] = sum; wq[l0r] = sq;
        const int64_t end = l0r + run < nlag ? l0r + run : nlag;
        for (int64_t l = l0r + 1; l < end; l++) {
            sum += rs[l + tq - 1] - rs[l - 1];
            sq += rq[l + tq - 1] - rq[l - 1];
            ws[l] = sum; wq[l] = sq;
        }
    }
    int near = 0;
    for (int64_t l = 0; l < nlag; l++) near |= !(wq[l] - ws[l] * ws[l] * inv_n > REFINE * wq[l]);
    return near;
}

/* Pearson r for lags [l0, l0 + nlag) of q in a target whose row l0 is t0[0] (float32 rows read in
 * place; rows 0 .. avail - 1 of t0 are readable), or, with t0 == NULL, row r0 of the store st (rows
 * converted into s->tile as the blocks reach them). The row statistics are taken just before the first
 * block that reads the rows, which then finds them in L1.
 * Writes curve[0 .. nlag-1] when curve != NULL; updates (*best, *bestlag) (first maximum) otherwise. */
static void segment(const query_t *q, const float *t0, int64_t avail, const store_t *st, int64_t r0, int64_t l0,
                    int64_t nlag, scratch_t *s, float *curve, double *best, int64_t *bestlag)
{
    const int64_t tq = q->tq, d = q->d, n = tq * d, nrows = nlag + tq - 1;
    if (q->constant) {      /* every block scores 0 */
        if (curve) memset(curve, 0, sizeof(float) * (size_t)nlag);
        else if (*bestlag < 0 || *best < 0.0) { *best = 0.0; *bestlag = l0; }
        return;
    }
    const int64_t bl = block_lags(d);
    const int64_t need = d == 1 ? bl + qbuf_len(tq, 1) - 1 : bl + tq - 1;   /* rows a block reads */
    const float *t = t0;
    if (!t0) {              /* converted rows: the tile, zero beyond the segment's rows */
        t = s->tile;
        const int64_t used = rows_read(nlag, tq, d);
        if (used > nrows) memset(s->tile + nrows * d, 0, sizeof(float) * (size_t)((used - nrows) * d));
        avail = used > nrows ? used : nrows;
    }
    /* dot products, block by block; meanwhile the next candidate is prefetched into cache, a share per
     * block, so that its first pass (the row sums) does not stall on memory */
    const int64_t nblocks = (nlag + bl - 1) / bl;
    const int64_t pf_share = s->pf_bytes > 0 ? ((s->pf_bytes + 63) / 64 + nblocks - 1) / nblocks * 64 : 0;
    int64_t done = 0;       /* rows with statistics (and converted) */
    for (int64_t b0 = 0; b0 < nlag; b0 += bl) {
        int64_t want = (b0 + need + 7) / 8 * 8;
        if (want > nrows) want = nrows;
        if (want > done) {
            if (t0) row_stats_fast(t0 + done * d, want - done, d, s->rs + done, s->rq + done);
            else convert_rows(st, r0 + done, want - done, s->tile + done * d, s->rs + done, s->rq + done);
            done = want;
        }
        const char *pf = s->pf;
        int64_t pf_lines = 0;
        if (s->pf_bytes > 0) {
            const int64_t m = pf_share < s->pf_bytes ? pf_share : s->pf_bytes;
            pf_lines = (m + 63) / 64;
            s->pf += m;
            s->pf_bytes -= m;
        }
        const float *src = t + b0 * d;
        if (b0 + need > avail) {                       /* not enough rows: copy and zero-pad */
            const int64_t have = avail - b0;
            memcpy(s->pad, src, sizeof(float) * (size_t)(have * d));
            memset(s->pad + have * d, 0, sizeof(float) * (size_t)((need - have) * d));
            src = s->pad;
        }
        if (d == 1) {
            /* 1-D: the lags b0 + r + RW*v (v < NL) are the row lags v of the query as rows of RW
             * samples (zero-padded) against the signal read as rows of RW from sample r */
            const int64_t tqr = qbuf_len(tq, 1) / RW;
            double o[NL];
            for (int64_t r = 0; r < RW; r++) {
                dots_block(q->qc, tqr, src + r, RW, o, pf, r == 0 ? pf_lines : 0);
                for (int v = 0; v < NL; v++) s->dots[b0 + r + RW * v] = o[v];
            }
        } else {
            dots_block(q->qc, tq, src, d, s->dots + b0, pf, pf_lines);
        }
    }
    /* window sums of the target blocks; near-constant or non-finite windows: exact row sums again */
    const double inv_n = 1.0 / (double)n;
    double *ws = s->ws, *wq = s->wq, *rv = s->dots;
    if (window_sums(s->rs, s->rq, nlag, tq, inv_n, ws, wq) && d > 1) {
        row_sums(t, nrows, d, s->rs, s->rq);
        window_sums(s->rs, s->rq, nlag, tq, inv_n, ws, wq);
        for (int64_t r = 0; r < nrows; r++)
            if (!isfinite(s->rq[r])) { s->bad = 1; break; }
    } else if (d == 1) {
        for (int64_t r = 0; r < nrows; r++)
            if (!isfinite(s->rq[r])) { s->bad = 1; break; }
    }
    /* the correlation, in place of the dot products */
    correlations(rv, ws, wq, nlag, inv_n, q->qsum, q->qss);
    if (curve) {
        for (int64_t l = 0; l < nlag; l++) curve[l] = (float)rv[l];
    } else {
        double b = *best;
        int64_t bl_ = *bestlag;
        for (int64_t l = 0; l < nlag; l++)
            if (rv[l] > b || bl_ < 0) { b = rv[l]; bl_ = l0 + l; }
        *best = b; *bestlag = bl_;
    }
}

/* max over all lags of q in float32 rows t (tt >= tq; rows up to avail >= tt readable): first maximum */
static void max_over_lags(const query_t *q, const float *t, int64_t tt, int64_t avail, scratch_t *s, double *best,
                          int64_t *bestlag)
{
    const int64_t nl = tt - q->tq + 1, d = q->d;
    *best = 0.0; *bestlag = -1;
    if (q->constant && isfinite(q->qss)) { *bestlag = 0; return; }
    const int64_t sl = seg_lags(d);
    for (int64_t l0 = 0; l0 < nl; l0 += sl) {
        const int64_t m = nl - l0 < sl ? nl - l0 : sl;
        segment(q, t + l0 * d, avail - l0, NULL, 0, l0, m, s, NULL, best, bestlag);
    }
}

/* the same over store rows r0 .. r0 + tt - 1 of another type, converted one segment (tile) at a time */
static void max_over_lags_tiles(const query_t *q, const store_t *st, int64_t r0, int64_t tt, scratch_t *s,
                                double *best, int64_t *bestlag)
{
    const int64_t nl = tt - q->tq + 1, sl = seg_lags(q->d);
    *best = 0.0; *bestlag = -1;
    if (q->constant && isfinite(q->qss)) { *bestlag = 0; return; }
    for (int64_t l0 = 0; l0 < nl; l0 += sl) {
        const int64_t m = nl - l0 < sl ? nl - l0 : sl;
        segment(q, NULL, 0, st, r0 + l0, l0, m, s, NULL, best, bestlag);
    }
}

static int nthreads(int threads)
{
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

/* ---------------------------------------------------------------------------------------------- */
int chadsp_pearson_curve(const float *query, int64_t tq, const float *target, int64_t tt, int64_t d,
                         int threads, float *out)
{
    if (tq < 1 || d < 1 || tt < tq) return CHADSP_EINVAL;
    void *qraw;
    float *qc = alloc_floats(qbuf_len(tq, d), &qraw);
    if (!qc) return CHADSP_ENOMEM;
    query_t q;
    prepare_query(query, tq, d, qc, &q);
    const int64_t nl = tt - tq + 1, sl = seg_lags(d), nseg = (nl + sl - 1) / sl;
    int nt = nthreads(threads);
    if (nt > nseg) nt = (int)nseg;
    int err = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        scratch_t s;
        const int ok = scratch_alloc(&s, tq, d, 0, 0);
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < nseg; k++) {
            if (!ok) continue;
            const int64_t l0 = k * sl, m = nl - l0 < sl ? nl - l0 : sl;
            segment(&q, target + l0 * d, tt - l0, NULL, 0, l0, m, &s, out + l0, NULL, NULL);
        }
        if (!ok) {
#pragma omp atomic write
            err = 1;
        }
        scratch_free(&s);
    }
    free(qraw);
    return err ? CHADSP_ENOMEM : 0;
}

/* Candidate k: store rows [starts[k], starts[k] + lengths[k]), or [starts[k], starts[k + 1]) when
 * lengths is NULL (starts are then n + 1 offsets). */
static int rerank_impl(const float *query, int64_t tq, int64_t d, const store_t *st, const int64_t *starts,
                       const int64_t *lengths, int64_t n, int threads, float *scores, int64_t *lags, int64_t *bad)
{
    if (tq < 1 || d < 1 || n < 0 || st->dtype < CHADSP_F32 || st->dtype > CHADSP_I8) return CHADSP_EINVAL;
    *bad = -1;
    if (n == 0) return 0;
    void *qraw;
    float *qc = alloc_floats(qbuf_len(tq, d), &qraw);
    if (!qc) return CHADSP_ENOMEM;
    query_t q;
    prepare_query(query, tq, d, qc, &q);
    const int64_t esize = elem_size(st->dtype);
    const char *base = (const char *)st->data;
    int nt = nthreads(threads);
    if (nt > n) nt = (int)n;
    /* candidates go to threads in chunks of up to 8 (fewer when there are few per thread, for balance);
     * a thread prefetches the next candidate of its chunk while it scores one */
    int64_t chunk = n / (8 * (int64_t)nt);
    chunk = chunk < 1 ? 1 : chunk > 8 ? 8 : chunk;
    int err = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        scratch_t s;
        const int ok = scratch_alloc(&s, tq, d, 1, st->dtype != CHADSP_F32);
#pragma omp for schedule(dynamic, chunk)
        for (int64_t k = 0; k < n; k++) {
            if (!ok) continue;
            const int64_t a = starts[k], ts = lengths ? lengths[k] : starts[k + 1] - starts[k];
            double best = 0.0;
            int64_t lag = 0;
            s.bad = 0;
            s.pf_bytes = 0;
            if (k + 1 < n && (k + 1) % chunk != 0) {     /* the next candidate of this thread's chunk */
                const int64_t a1 = starts[k + 1], n1 = lengths ? lengths[k + 1] : starts[k + 2] - starts[k + 1];
                s.pf = base + a1 * d * esize;
                s.pf_bytes = n1 * d * esize;
            }
            if (ts >= tq) {
                if (st->dtype == CHADSP_F32)
                    max_over_lags(&q, (const float *)st->data + a * d, ts, st->n_rows - a, &s, &best, &lag);
                else max_over_lags_tiles(&q, st, a, ts, &s, &best, &lag);
            } else if (ts > 0) {
                /* shorter than the query: the candidate slides inside the query; lag = -offset */
                query_t c;
                if (st->dtype == CHADSP_F32) {
                    prepare_query((const float *)st->data + a * d, ts, d, s.qbuf, &c);
                } else {
                    convert_rows(st, a, ts, s.qbuf, s.rs, s.rq);
                    prepare_query(s.qbuf, ts, d, s.qbuf, &c);
                }
                if (!isfinite(c.qss)) s.bad = 1;
                max_over_lags(&c, query, tq, tq, &s, &best, &lag);
                lag = -lag;
            }
            scores[k] = (float)best;
            lags[k] = lag;
            if (s.bad) {
#pragma omp critical(chadsp_rerank_bad)
                if (*bad < 0 || k < *bad) *bad = k;
            }
        }
        if (!ok) {
#pragma omp atomic write
            err = 1;
        }
        scratch_free(&s);
    }
    free(qraw);
    return err ? CHADSP_ENOMEM : 0;
}

int chadsp_rerank(const float *query, int64_t tq, int64_t d, const float *data, const int64_t *offsets,
                  int64_t n, int threads, float *scores, int64_t *lags, int64_t *bad)
{
    const store_t st = {data, CHADSP_F32, NULL, d, n > 0 ? offsets[n] : 0};
    return rerank_impl(query, tq, d, &st, offsets, NULL, n, threads, scores, lags, bad);
}

int chadsp_rerank_ranges(const float *query, int64_t tq, int64_t d, const void *data, int64_t n_rows, int dtype,
                         const float *scales, const int64_t *starts, const int64_t *lengths, int64_t n,
                         int threads, float *scores, int64_t *lags, int64_t *bad)
{
    if (!lengths || n_rows < 0) return CHADSP_EINVAL;
    const store_t st = {data, dtype, scales, d, n_rows};
    return rerank_impl(query, tq, d, &st, starts, lengths, n, threads, scores, lags, bad);
}

int chadsp_pearson_normalize(const float *query, int64_t tq, const float *target, int64_t tt, int64_t d,
                             const float *num, double shift, double qsum, float *out)
{
    if (tq < 1 || d < 1 || tt < tq) return CHADSP_EINVAL;
    const int64_t n = tq * d, nl = tt - tq + 1;
    double s, sq;
    sums(query, n, &s, &sq);
    const double m = s / (double)n;
    double qss = centred_ss(query, n, m);
    if (!(qss > ZERO_VAR_REL * sq)) {
        memset(out, 0, sizeof(float) * (size_t)nl);
        return 0;
    }
    double *buf = malloc(sizeof(double) * 3 * SEG);
    if (!buf) return CHADSP_ENOMEM;
    double *ws = buf, *wq = buf + SEG, *rv = buf + 2 * SEG;
    /* window sums: exact every `run` lags, add/subtract of the entering and leaving rows in between */
    const int64_t run = tq > 64 ? tq : 64;
    const double inv_n = 1.0 / (double)n;
    double sum = 0.0, ssq = 0.0;
    int64_t since = run;    /* lags since the last exact sum */
    for (int64_t l0 = 0; l0 < nl; l0 += SEG) {
        const int64_t m_ = nl - l0 < SEG ? nl - l0 : SEG;
        for (int64_t j = 0; j < m_; j++, since++) {
            const int64_t l = l0 + j;
            if (since == run) {
                since = 0;
                sums(target + l * d, tq * d, &sum, &ssq);
            } else if (d == 1) {
                const double x = (double)target[l - 1], y = (double)target[l + tq - 1];
                sum += y - x;
                ssq += y * y - x * x;
            } else {
                const float *a = target + (l - 1) * d, *b = target + (l + tq - 1) * d;
                double da = 0.0, db = 0.0, qa = 0.0, qb = 0.0;
                for (int64_t c = 0; c < d; c++) {
                    const double x = (double)a[c], y = (double)b[c];
                    da += x; qa += x * x; db += y; qb += y * y;
                }
                sum += db - da;
                ssq += qb - qa;
            }
            ws[j] = sum; wq[j] = ssq;
            /* num is dot(qc, t_l - shift): make it dot(qc, t_l) for correlations() */
            rv[j] = (double)num[l] + shift * qsum;
        }
        correlations(rv, ws, wq, m_, inv_n, qsum, qss);
        for (int64_t j = 0; j < m_; j++) out[l0 + j] = (float)rv[j];
    }
    free(buf);
    return 0;
}
