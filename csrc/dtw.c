/* dtw.c: banded DTW, batched DTW re-ranking and subsequence DTW.
 *
 * The DP is computed in "band coordinates": row i of the cumulative-cost matrix is stored as the cells
 * j = i + lo + k, k = 0 .. W-1, where [lo, lo + W - 1] is the band's range of j - i. In these
 * coordinates the three predecessors of (i, k) are prev[k] (diagonal), prev[k + 1] (up) and cur[k - 1]
 * (left), so two rolling rows of W cells suffice (O(band) memory).
 *
 * The recurrence is latency-bound (each cell waits for its left neighbour), so the batched kernel runs
 * L = 16 independent (query, reference) pairs at once, one per SIMD lane: the references of a group are
 * copied, block of rows by block of rows, into a lane-interleaved layout y[j][d][lane], and every
 * arithmetic step below is a loop over the lanes that the compiler turns into one vector instruction.
 * A lane whose reference is shorter than the group's longest, or whose band is narrower than the
 * group's union band, gets +inf costs outside its own cells. A single pair runs the same code with
 * L = 1 (no copy), so both paths do the same float operations in the same order per pair.
 *
 * Arithmetic: float32 throughout (costs and cumulative sums); costs sum the D products in order
 * d = 0 .. D-1. No NaN can arise: the Python layer rejects non-finite inputs and bounds their magnitude,
 * and costs are clamped to +-COST_MAX besides (the packed candidates of dtw_rerank are used unchecked),
 * so +inf only enters as a penalty.
 */
#include "chadsp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__)
#define DTW_INLINE static inline __attribute__((always_inline))
#else
#define DTW_INLINE static inline
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
/* gcc keeps 256-bit vectors by default on many AVX-512 targets; the lane loops are 16 floats wide. */
#pragma GCC target("prefer-vector-width=512")
#endif

#define LANES 16          /* pairs per group in the batched kernel */
#define KB 4              /* cells whose costs are accumulated together (independent FMA chains) */
#define RT 4              /* query rows whose costs are computed together (a tile shares frame loads) */
#define ROWBLOCK 64       /* query rows per re-copy of the interleaved reference window, at least */
#define METRIC_EUCLIDEAN 0
#define METRIC_COSINE 1

static const float INF = HUGE_VALF;
/* Cell costs are clamped to [-COST_MAX, COST_MAX] (a NaN cost becomes COST_MAX): path sums of fewer than
 * 3e8 cells then stay finite, and no inf - inf (NaN) can arise even on unchecked (trusted) packed data. */
#define COST_MAX 1e30f

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Query rows per copy of the interleaved window for a band of w cells: max(ROWBLOCK, w), a multiple of RT,
 * so each reference frame is copied at most about twice; the window holds row_block(w) + w frames. */
static int64_t row_block(int64_t w) { return (max64(ROWBLOCK, w) + RT - 1) / RT * RT; }

/* ---------------------------------------------------------------------------------------------- */
/* Costs of one query row x (D floats) against cnt consecutive reference frames y[0..cnt-1], each  */
/* frame being D x L floats (lane-interleaved). out[t * L + l] = cost of lane l, frame t.          */
/* Every cost is acc = 0; acc += p_d (d = 0 .. D-1, p_d = diff * diff or x * y, an FMA where the  */
/* target has one); cosine then 1 - acc. The AVX-512 path below does the same operations.         */
/* ---------------------------------------------------------------------------------------------- */
/* a * b + c with one rounding where the target has an FMA (as the AVX-512 path does), so that the scalar
 * and the lane paths give bit-identical costs; the explicit call also keeps the compiler from splitting
 * the multiply from the add when it vectorises. */
#if defined(FP_FAST_FMAF) || defined(__FP_FAST_FMAF)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* The same clamp as cost_final below, in scalar form. */
DTW_INLINE float cost_final1(const int metric, float acc)
{
    acc = acc < COST_MAX ? acc : COST_MAX;
    if (metric == METRIC_EUCLIDEAN) return acc;
    acc = acc > -COST_MAX ? acc : -COST_MAX;
    return 1.0f - acc;
}

DTW_INLINE void cost_row_generic(const int L, const int metric, const float *x, int64_t D, const float *y,
                                 int64_t cnt, float *out)
{
    int64_t t = 0;
    for (; t + KB <= cnt; t += KB) {
        float acc[KB][LANES];
        for (int b = 0; b < KB; b++)
            for (int l = 0; l < L; l++) acc[b][l] = 0.0f;
        const float *yb = y + t * D * L;
        for (int64_t d = 0; d < D; d++) {
            const float xv = x[d];
            for (int b = 0; b < KB; b++) {
                const float *yy = yb + (b * D + d) * L;
                for (int l = 0; l < L; l++) {
                    if (metric == METRIC_EUCLIDEAN) { float df = xv - yy[l]; acc[b][l] = MADD(df, df, acc[b][l]); }
                    else acc[b][l] = MADD(xv, yy[l], acc[b][l]);
                }
            }
        }
        for (int b = 0; b < KB; b++)
            for (int l = 0; l < L; l++)
                out[(t + b) * L + l] = cost_final1(metric, acc[b][l]);
    }
    for (; t < cnt; t++) {
        float acc[LANES];
        for (int l = 0; l < L; l++) acc[l] = 0.0f;
        const float *yb = y + t * D * L;
        for (int64_t d = 0; d < D; d++) {
            const float xv = x[d];
            const float *yy = yb + d * L;
            for (int l = 0; l < L; l++) {
                if (metric == METRIC_EUCLIDEAN) { float df = xv - yy[l]; acc[l] = MADD(df, df, acc[l]); }
                else acc[l] = MADD(xv, yy[l], acc[l]);
            }
        }
        for (int l = 0; l < L; l++) out[t * L + l] = cost_final1(metric, acc[l]);
    }
}

#if defined(__AVX512F__) && LANES == 16
#include <immintrin.h>
#define DTW_AVX512 1

DTW_INLINE __m512 cost_term(const int metric, __m512 xv, __m512 yv, __m512 acc)
{
    if (metric == METRIC_EUCLIDEAN) { const __m512 df = _mm512_sub_ps(xv, yv); return _mm512_fmadd_ps(df, df, acc); }
    return _mm512_fmadd_ps(xv, yv, acc);
}

DTW_INLINE __m512 cost_final(const int metric, __m512 acc)
{
    acc = _mm512_min_ps(acc, _mm512_set1_ps(COST_MAX));   /* NaN -> COST_MAX (min returns its 2nd operand) */
    if (metric == METRIC_EUCLIDEAN) return acc;
    acc = _mm512_max_ps(acc, _mm512_set1_ps(-COST_MAX));
    return _mm512_sub_ps(_mm512_set1_ps(1.0f), acc);
}

/* Costs of RT query rows x[r] (row pointers) against cnt frames: out[r * ostride + t * 16 + l].
 * A tile of RT rows x 4 frames shares each loaded frame vector over the rows. */
DTW_INLINE void cost_tile16(const int metric, const float *const *x, int64_t D, const float *y, int64_t cnt,
                            float *out, int64_t ostride)
{
    int64_t t = 0;
    if (D == 1) {
        const __m512 z = _mm512_setzero_ps();
        for (int r = 0; r < RT; r++) {
            const __m512 xv = _mm512_set1_ps(x[r][0]);
            for (t = 0; t < cnt; t++)
                _mm512_storeu_ps(out + r * ostride + t * 16,
                                 cost_final(metric, cost_term(metric, xv, _mm512_loadu_ps(y + t * 16), z)));
        }
        return;
    }
    for (; t + 4 <= cnt; t += 4) {
        __m512 acc[RT][4];
        for (int r = 0; r < RT; r++)
            for (int b = 0; b < 4; b++) acc[r][b] = _mm512_setzero_ps();
        const float *yb = y + t * D * 16;
        for (int64_t d = 0; d < D; d++) {
            __m512 yv[4];
            for (int b = 0; b < 4; b++) yv[b] = _mm512_loadu_ps(yb + (b * D + d) * 16);
            for (int r = 0; r < RT; r++) {
                const __m512 xv = _mm512_set1_ps(x[r][d]);
                for (int b = 0; b < 4; b++) acc[r][b] = cost_term(metric, xv, yv[b], acc[r][b]);
            }
        }
        for (int r = 0; r < RT; r++)
            for (int b = 0; b < 4; b++) _mm512_storeu_ps(out + r * ostride + (t + b) * 16, cost_final(metric, acc[r][b]));
    }
    for (; t < cnt; t++) {
        __m512 acc[RT];
        for (int r = 0; r < RT; r++) acc[r] = _mm512_setzero_ps();
        const float *yb = y + t * D * 16;
        for (int64_t d = 0; d < D; d++) {
            const __m512 yv = _mm512_loadu_ps(yb + d * 16);
            for (int r = 0; r < RT; r++) acc[r] = cost_term(metric, _mm512_set1_ps(x[r][d]), yv, acc[r]);
        }
        for (int r = 0; r < RT; r++) _mm512_storeu_ps(out + r * ostride + t * 16, cost_final(metric, acc[r]));
    }
}

/* 16 x 16 transpose in registers: r[l] holds 16 floats of lane l; afterwards r[v] holds element
 * TPERM[v] of every lane. */
static const int TPERM[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

DTW_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[4 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[8 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* Frame j of 16 lanes (lane l reads src[l] + j * D, or zeros where !in[l]) into yw[d * 16 + l]; D % 16 == 0. */
DTW_INLINE void interleave16(const float *const *src, const int *in, int64_t j, int64_t D, float *yw)
{
    for (int64_t c = 0; c < D; c += 16) {
        __m512 r[16];
        for (int l = 0; l < 16; l++) r[l] = in[l] ? _mm512_loadu_ps(src[l] + j * D + c) : _mm512_setzero_ps();
        transpose16(r);
        for (int v = 0; v < 16; v++) _mm512_storeu_ps(yw + (c + TPERM[v]) * 16, r[v]);
    }
}

/* One DP row over cells k0..k1, 16 lanes: cur[k] = min(min(prev[k], prev[k+1]) + c, cur[k-1] + c);
 * cb, pen and jp point at cell k0. */
DTW_INLINE void dp_row16(const float *cb, const float *pen, const float *jp, const float *prev, float *cur,
                         int64_t k0, int64_t k1)
{
    __m512 left = _mm512_set1_ps(HUGE_VALF);
    for (int64_t k = k0; k <= k1; k++) {
        const int64_t o = (k - k0) * 16;
        const __m512 c = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(cb + o), _mm512_loadu_ps(pen + o)),
                                       _mm512_loadu_ps(jp + o));
        const __m512 m = _mm512_min_ps(_mm512_loadu_ps(prev + k * 16), _mm512_loadu_ps(prev + k * 16 + 16));
        left = _mm512_min_ps(_mm512_add_ps(m, c), _mm512_add_ps(left, c));
        _mm512_storeu_ps(cur + k * 16, left);
    }
}
#endif

/* Costs of the RT query rows x[r] against cnt frames of y: out[r * ostride + t * L + l]. */
DTW_INLINE void cost_tile(const int L, const int metric, const float *const *x, int64_t D, const float *y,
                          int64_t cnt, float *out, int64_t ostride)
{
#ifdef DTW_AVX512
    if (L == 16) { cost_tile16(metric, x, D, y, cnt, out, ostride); return; }
#endif
    for (int r = 0; r < RT; r++) cost_row_generic(L, metric, x[r], D, y, cnt, out + r * ostride);
}

/* ---------------------------------------------------------------------------------------------- */
/* The lane kernel.                                                                                */
/* ---------------------------------------------------------------------------------------------- */
typedef struct {
    float *ywin;   /* (row_block(W) + W) * D * L: interleaved reference window         (L > 1 only) */
    float *jpen;   /* (row_block(W) + W) * L: +inf where j >= m_l                       (L > 1 only) */
    float *pen;    /* W * L: +inf where k is outside lane l's band                                   */
    float *rowa;   /* (W + 1) * L */
    float *rowb;   /* (W + 1) * L */
    float *cb;     /* RT * (W + RT) * L: the costs of a tile of RT rows */
} scratch_t;

static void scratch_free(scratch_t *s)
{
    free(s->ywin); free(s->jpen); free(s->pen); free(s->rowa); free(s->rowb); free(s->cb);
    memset(s, 0, sizeof *s);
}

/* Scratch for lanes of L pairs with a union band of at most wmax cells, feature dimension D. */
static int scratch_alloc(scratch_t *s, int L, int64_t wmax, int64_t D)
{
    memset(s, 0, sizeof *s);
    size_t w = (size_t)wmax, l = (size_t)L;
    if (L > 1) {
        s->ywin = malloc(((size_t)row_block(wmax) + w) * (size_t)D * l * sizeof(float));
        s->jpen = malloc(((size_t)row_block(wmax) + w) * l * sizeof(float));
    }
    s->pen = malloc(w * l * sizeof(float));
    s->rowa = malloc((w + 1) * l * sizeof(float));
    s->rowb = malloc((w + 1) * l * sizeof(float));
    s->cb = malloc((size_t)RT * (w + RT) * l * sizeof(float));
    if (!s->pen || !s->rowa || !s->rowb || !s->cb || (L > 1 && (!s->ywin || !s->jpen))) {
        scratch_free(s);
        return CHADSP_ENOMEM;
    }
    return 0;
}

/* Lane l (< nl) aligns x (n x D) with yp[l] (m[l] x D) over the cells lol[l] <= j - i <= hil[l]
 * (with -(n-1) <= lol[l] <= 0 <= hil[l] <= m[l] - 1), starting at (0, 0). Lanes nl .. L-1 are idle.
 * Closed end: res[l] = D(n-1, m[l]-1). Open end: res[l] = min_j D(n-1, j), endj[l] = its first argmin.
 * Cumulative sums, before any sqrt. */
DTW_INLINE void lanes_dtw(const int L, const int metric, const float *x, int64_t n, int64_t D,
                          const float *const *yp, const int64_t *m, const int64_t *lol, const int64_t *hil,
                          int nl, int open_end, scratch_t *s, float *res, int64_t *endj)
{
    int64_t lo = lol[0], hi = hil[0], mmax = m[0];
    for (int l = 1; l < nl; l++) {
        lo = min64(lo, lol[l]); hi = max64(hi, hil[l]); mmax = max64(mmax, m[l]);
    }
    const int64_t W = hi - lo + 1, RB = row_block(W);
    float *pen = s->pen, *prev = s->rowa, *cur = s->rowb, *cb = s->cb;

    for (int64_t k = 0; k < W; k++)
        for (int l = 0; l < L; l++) {
            int ok = l < nl && lo + k >= lol[l] && lo + k <= hil[l];
            pen[k * L + l] = ok ? 0.0f : INF;
        }
    for (int64_t k = 0; k < (W + 1) * L; k++) { prev[k] = INF; cur[k] = INF; }
    for (int l = 0; l < L; l++) prev[(-lo) * L + l] = 0.0f;   /* D(-1, -1) = 0 */

    const float *ybase = yp[0];  /* L == 1: the reference itself, frame j at ybase + j * D */
    int64_t jb = 0;              /* first frame held in the interleaved window */
    int64_t tj0 = 0, tspan = 0;  /* frames [tj0, tj0 + tspan) of the current cost tile */

    for (int64_t i = 0; i < n; i++) {
        const int64_t k0 = max64(0, -i - lo);
        const int64_t k1 = min64(W - 1, mmax - 1 - i - lo);
        if (L > 1 && i % RB == 0) {
            /* copy frames [jb, je) of every lane into the window: all rows i .. i + RB - 1 need */
            jb = max64(0, i + lo);
            const int64_t je = min64(mmax, i + RB - 1 + hi + 1);
            for (int64_t j = jb; j < je; j++) {
                float *yw = s->ywin + (j - jb) * D * L;
                float *jp = s->jpen + (j - jb) * L;
                int in[LANES];
                for (int l = 0; l < L; l++) {
                    in[l] = l < nl && j < m[l];
                    jp[l] = in[l] ? 0.0f : INF;
                }
#ifdef DTW_AVX512
                if (L == 16 && D % 16 == 0) { interleave16(yp, in, j, D, yw); continue; }
#endif
                for (int l = 0; l < L; l++) {
                    if (in[l]) {
                        const float *src = yp[l] + j * D;
                        for (int64_t d = 0; d < D; d++) yw[d * L + l] = src[d];
                    } else {
                        for (int64_t d = 0; d < D; d++) yw[d * L + l] = 0.0f;
                    }
                }
            }
            ybase = s->ywin;
        }
        if (i % RT == 0) {
            /* costs of rows i .. i + RT - 1 against frames [tj0, tj1): every cell these rows may use */
            const float *xr[RT];
            for (int r = 0; r < RT; r++) xr[r] = x + min64(i + r, n - 1) * D;
            tj0 = max64(0, i + lo);
            const int64_t tj1 = min64(mmax, i + RT - 1 + hi + 1);
            tspan = tj1 - tj0;
            cost_tile(L, metric, xr, D, ybase + (tj0 - jb) * D * L, tspan, cb, tspan * L);
        }
        if (k0 > k1) {  /* no cell of any lane on this row (cannot happen for valid bands; defensive) */
            for (int64_t k = 0; k < (W + 1) * L; k++) cur[k] = INF;
        } else {
            const int64_t j0 = i + lo + k0;
            const float *crow = cb + (i % RT) * tspan * L + (j0 - tj0) * L;   /* the cost of cell k0 */
#ifdef DTW_AVX512
            if (L == 16) {
                dp_row16(crow, pen + k0 * L, s->jpen + (j0 - jb) * L, prev, cur, k0, k1);
            } else
#endif
            {
                float left[LANES];
                for (int l = 0; l < L; l++) left[l] = INF;
                for (int64_t k = k0; k <= k1; k++) {
                    const float *pk = prev + k * L, *pe = pen + k * L, *c = crow + (k - k0) * L;
                    const float *jp = L > 1 ? s->jpen + (i + lo + k - jb) * L : pe;
                    float *ck = cur + k * L;
                    for (int l = 0; l < L; l++) {
                        float cost = c[l] + pe[l];
                        if (L > 1) cost += jp[l];
                        const float dg = pk[l], up = pk[L + l];
                        const float a = (dg < up ? dg : up) + cost;
                        const float b = left[l] + cost;
                        const float v = a < b ? a : b;
                        ck[l] = v;
                        left[l] = v;
                    }
                }
            }
            /* cells above k1 still hold row i - 2: make them +inf for row i + 1 (which reads k1 + 1) */
            for (int64_t k = k1 + 1; k <= min64(W, k1 + 2); k++)
                for (int l = 0; l < L; l++) cur[k * L + l] = INF;
        }
        float *tmp = prev; prev = cur; cur = tmp;
    }

    for (int l = 0; l < nl; l++) {
        if (!open_end) {
            res[l] = prev[(m[l] - n - lo) * L + l];
        } else {
            float best = INF;
            int64_t bj = -1;
            for (int64_t k = 0; k < W; k++) {
                const float v = prev[k * L + l];
                if (v < best) { best = v; bj = n - 1 + lo + k; }
            }
            res[l] = best;
            endj[l] = bj;
        }
    }
}

static void lanes_e16(const float *x, int64_t n, int64_t D, const float *const *yp, const int64_t *m,
                      const int64_t *lol, const int64_t *hil, int nl, int oe, scratch_t *s, float *r, int64_t *e)
{ lanes_dtw(LANES, METRIC_EUCLIDEAN, x, n, D, yp, m, lol, hil, nl, oe, s, r, e); }
static void lanes_c16(const float *x, int64_t n, int64_t D, const float *const *yp, const int64_t *m,
                      const int64_t *lol, const int64_t *hil, int nl, int oe, scratch_t *s, float *r, int64_t *e)
{ lanes_dtw(LANES, METRIC_COSINE, x, n, D, yp, m, lol, hil, nl, oe, s, r, e); }
static void lanes_e1(const float *x, int64_t n, int64_t D, const float *const *yp, const int64_t *m,
                     const int64_t *lol, const int64_t *hil, int nl, int oe, scratch_t *s, float *r, int64_t *e)
{ lanes_dtw(1, METRIC_EUCLIDEAN, x, n, D, yp, m, lol, hil, nl, oe, s, r, e); }
static void lanes_c1(const float *x, int64_t n, int64_t D, const float *const *yp, const int64_t *m,
                     const int64_t *lol, const int64_t *hil, int nl, int oe, scratch_t *s, float *r, int64_t *e)
{ lanes_dtw(1, METRIC_COSINE, x, n, D, yp, m, lol, hil, nl, oe, s, r, e); }

static void run_lanes(int L, int metric, const float *x, int64_t n, int64_t D, const float *const *yp,
                      const int64_t *m, const int64_t *lol, const int64_t *hil, int nl, int oe, scratch_t *s,
                      float *r, int64_t *e)
{
    if (L == 1) (metric == METRIC_COSINE ? lanes_c1 : lanes_e1)(x, n, D, yp, m, lol, hil, nl, oe, s, r, e);
    else (metric == METRIC_COSINE ? lanes_c16 : lanes_e16)(x, n, D, yp, m, lol, hil, nl, oe, s, r, e);
}

/* The band of a pair (n, m) in j - i, clipped to the matrix. band < 0: the full matrix. */
static void pair_band(int64_t n, int64_t m, int64_t band, int64_t *lo, int64_t *hi)
{
    if (band < 0) { *lo = -(n - 1); *hi = m - 1; return; }
    *lo = max64(-(n - 1), -band - max64(0, n - m));
    *hi = min64(m - 1, band + max64(0, m - n));
}

static int set_threads(int threads)
{
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

/* Scratch larger than this per thread makes a group fall back to one pair at a time (L = 1, no copy). */
#define LANE_SCRATCH_MAX ((int64_t)64 << 20)

static int64_t lane_bytes(int64_t w, int64_t D)
{
    return ((row_block(w) + w) * (D + 1) + (RT + 3) * (w + RT)) * LANES * (int64_t)sizeof(float);
}

/* candidates sorted by length, longest first (ties: by index, for determinism) */
typedef struct { int64_t len, idx; } lenidx_t;
static int cmp_lenidx(const void *a, const void *b)
{
    const lenidx_t *p = a, *q = b;
    if (p->len != q->len) return p->len > q->len ? -1 : 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

int chadsp_dtw_batch(const float *query, int64_t n, int64_t dim, const float *data, const int64_t *offsets,
                     int64_t n_cand, int64_t band, int metric, int threads, float *out)
{
    if (n < 1 || dim < 1 || n_cand < 0 || (metric != METRIC_EUCLIDEAN && metric != METRIC_COSINE))
        return CHADSP_EINVAL;
    if (n_cand == 0) return 0;
    lenidx_t *order = malloc((size_t)n_cand * sizeof *order);
    if (!order) return CHADSP_ENOMEM;
    int64_t nz = 0;
    for (int64_t c = 0; c < n_cand; c++) {
        const int64_t len = offsets[c + 1] - offsets[c];
        if (len <= 0) { out[c] = INF; continue; }   /* an empty reference: no alignment */
        order[nz].len = len; order[nz].idx = c; nz++;
    }
    qsort(order, (size_t)nz, sizeof *order, cmp_lenidx);
    /* groups of LANES consecutive (by length) references; a last group of < LANES / 4 runs pair by pair */
    const int64_t n_full = nz / LANES, rem = nz % LANES;
    const int64_t tail_lanes = rem >= LANES / 4 ? 1 : 0;
    const int64_t n_tasks = n_full + tail_lanes + (tail_lanes ? 0 : rem);
    int64_t wmax1 = 1, wmaxg = 1;   /* widest band: of a single pair, and of a group's union */
    for (int64_t t = 0; t < nz; t++) {
        int64_t lo, hi;
        pair_band(n, order[t].len, band, &lo, &hi);
        wmax1 = max64(wmax1, hi - lo + 1);
    }
    for (int64_t g = 0; g * LANES < nz; g++) {
        const int64_t a = g * LANES, b = min64(nz, a + LANES) - 1;  /* longest, shortest of the group */
        int64_t lo1, hi1, lo2, hi2;
        pair_band(n, order[a].len, band, &lo1, &hi1);
        pair_band(n, order[b].len, band, &lo2, &hi2);
        wmaxg = max64(wmaxg, max64(hi1, hi2) - min64(lo1, lo2) + 1);
    }
    const int use_lanes = lane_bytes(wmaxg, dim) <= LANE_SCRATCH_MAX;
    int err = 0;
    const int nt = set_threads(threads);

    #pragma omp parallel num_threads(nt)
    {
        scratch_t s1, sg;
        int e1 = scratch_alloc(&s1, 1, wmax1, dim);
        int eg = use_lanes ? scratch_alloc(&sg, LANES, wmaxg, dim) : 0;
        if (!use_lanes) memset(&sg, 0, sizeof sg);
        if (e1 || eg) {
            #pragma omp atomic write
            err = CHADSP_ENOMEM;
        }
        #pragma omp barrier
        int bad;
        #pragma omp atomic read
        bad = err;
        if (!bad) {
            #pragma omp for schedule(dynamic, 1)
            for (int64_t task = 0; task < n_tasks; task++) {
                int64_t first, count;
                if (task < n_full + tail_lanes) { first = task * LANES; count = min64(LANES, nz - first); }
                else { first = n_full * LANES + (task - n_full); count = 1; }
                const int lanes = use_lanes && count > 1;
                if (lanes) {
                    const float *yp[LANES];
                    int64_t m[LANES], lol[LANES], hil[LANES], endj[LANES];
                    float res[LANES];
                    for (int l = 0; l < count; l++) {
                        const int64_t c = order[first + l].idx;
                        yp[l] = data + offsets[c] * dim;
                        m[l] = order[first + l].len;
                        pair_band(n, m[l], band, &lol[l], &hil[l]);
                    }
                    run_lanes(LANES, metric, query, n, dim, yp, m, lol, hil, (int)count, 0, &sg, res, endj);
                    for (int l = 0; l < count; l++) {
                        const int64_t c = order[first + l].idx;
                        out[c] = metric == METRIC_EUCLIDEAN ? (float)sqrt((double)res[l]) : res[l];
                    }
                } else {
                    for (int64_t t = first; t < first + count; t++) {
                        const int64_t c = order[t].idx;
                        const float *yp[1] = {data + offsets[c] * dim};
                        int64_t m[1] = {order[t].len}, lol[1], hil[1], endj[1];
                        float res[1];
                        pair_band(n, m[0], band, &lol[0], &hil[0]);
                        run_lanes(1, metric, query, n, dim, yp, m, lol, hil, 1, 0, &s1, res, endj);
                        out[c] = metric == METRIC_EUCLIDEAN ? (float)sqrt((double)res[0]) : res[0];
                    }
                }
            }
        }
        scratch_free(&s1);
        scratch_free(&sg);
    }
    free(order);
    return err;
}

/* ---------------------------------------------------------------------------------------------- */
/* Subsequence DTW.                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/* band < 0: Mueller's subsequence DTW, D(0, j) = c(0, j), the start carried along the DP. */
static int subseq_free(const float *q, int64_t n, const float *t, int64_t M, int64_t D, int metric,
                       float *cost, int64_t *start, int64_t *end)
{
    float *c = malloc((size_t)M * sizeof(float));
    float *dp = malloc((size_t)M * sizeof(float)), *dc = malloc((size_t)M * sizeof(float));
    int64_t *sp = malloc((size_t)M * sizeof(int64_t)), *sc = malloc((size_t)M * sizeof(int64_t));
    if (!c || !dp || !dc || !sp || !sc) {
        free(c); free(dp); free(dc); free(sp); free(sc);
        return CHADSP_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        if (metric == METRIC_COSINE) cost_row_generic(1, METRIC_COSINE, q + i * D, D, t, M, c);
        else cost_row_generic(1, METRIC_EUCLIDEAN, q + i * D, D, t, M, c);
        if (i == 0) {
            for (int64_t j = 0; j < M; j++) { dc[j] = c[j]; sc[j] = j; }
        } else {
            /* ties: diagonal, then up, then left */
            float left = INF;
            int64_t ls = -1;
            for (int64_t j = 0; j < M; j++) {
                float best = j > 0 ? dp[j - 1] : INF;
                int64_t bs = j > 0 ? sp[j - 1] : -1;
                if (dp[j] < best) { best = dp[j]; bs = sp[j]; }
                if (left < best) { best = left; bs = ls; }
                left = best + c[j];
                ls = bs;
                dc[j] = left;
                sc[j] = bs;
            }
        }
        float *tf = dp; dp = dc; dc = tf;
        int64_t *ti = sp; sp = sc; sc = ti;
    }
    int64_t bj = 0;
    for (int64_t j = 1; j < M; j++)
        if (dp[j] < dp[bj]) bj = j;
    *cost = dp[bj];
    *start = sp[bj];
    *end = bj + 1;
    free(c); free(dp); free(dc); free(sp); free(sc);
    return 0;
}

/* band >= 0: for every start s, an open-end DTW of the query against t[s:] over the cells
 * |(j - s) - i| <= band (lanes = consecutive starts); the best over s. */
static int subseq_band(const float *q, int64_t n, const float *t, int64_t M, int64_t D, int64_t band,
                       int metric, int threads, float *cost, int64_t *start, int64_t *end)
{
    const int64_t smax = min64(M - 1, M - n + band);   /* the last start with a reachable end */
    if (smax < 0) return CHADSP_EINVAL;
    const int64_t ns = smax + 1, ng = (ns + LANES - 1) / LANES;
    float *val = malloc((size_t)ns * sizeof(float));
    int64_t *ends = malloc((size_t)ns * sizeof(int64_t));
    if (!val || !ends) { free(val); free(ends); return CHADSP_ENOMEM; }
    const int64_t wmax = min64(band, n - 1) + band + 1;
    int err = 0;
    const int nt = set_threads(threads);

    #pragma omp parallel num_threads(nt)
    {
        scratch_t sg;
        int e = scratch_alloc(&sg, LANES, wmax, D);
        if (e) {
            #pragma omp atomic write
            err = CHADSP_ENOMEM;
        }
        #pragma omp barrier
        int bad;
        #pragma omp atomic read
        bad = err;
        if (!bad) {
            #pragma omp for schedule(dynamic, 1)
            for (int64_t g = 0; g < ng; g++) {
                const int64_t s0 = g * LANES;
                const int cnt = (int)min64(LANES, ns - s0);
                const float *yp[LANES];
                int64_t m[LANES], lol[LANES], hil[LANES], endj[LANES];
                float res[LANES];
                for (int l = 0; l < cnt; l++) {
                    yp[l] = t + (s0 + l) * D;
                    m[l] = min64(M - (s0 + l), n + band);
                    lol[l] = -min64(band, n - 1);
                    hil[l] = min64(band, m[l] - 1);
                }
                run_lanes(LANES, metric, q, n, D, yp, m, lol, hil, cnt, 1, &sg, res, endj);
                for (int l = 0; l < cnt; l++) { val[s0 + l] = res[l]; ends[s0 + l] = endj[l]; }
            }
        }
        scratch_free(&sg);
    }
    if (!err) {
        int64_t bs = 0;
        for (int64_t s = 1; s < ns; s++)
            if (val[s] < val[bs]) bs = s;
        *cost = val[bs];
        *start = bs;
        *end = bs + ends[bs] + 1;
    }
    free(val); free(ends);
    return err;
}

int chadsp_subsequence_dtw(const float *query, int64_t n, const float *target, int64_t m, int64_t dim,
                           int64_t band, int metric, int threads, double *cost, int64_t *start, int64_t *end)
{
    if (n < 1 || m < 1 || dim < 1 || (metric != METRIC_EUCLIDEAN && metric != METRIC_COSINE)) return CHADSP_EINVAL;
    float c = 0.0f;
    int rc = band < 0 ? subseq_free(query, n, target, m, dim, metric, &c, start, end)
                      : subseq_band(query, n, target, m, dim, band, metric, threads, &c, start, end);
    if (rc) return rc;
    *cost = metric == METRIC_EUCLIDEAN ? sqrt((double)c) : (double)c;
    return 0;
}
