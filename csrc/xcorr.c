/* xcorr.c: peak picking with the semantics of scipy.signal.find_peaks(x, height=, distance=).
 *
 * Local maxima follow scipy's _local_maxima_1d: a peak is a sample (or a flat run of equal samples)
 * with a strictly smaller neighbour on both sides; a flat peak is reported at its middle (rounded
 * down); the first and last samples are never peaks. The distance rule follows
 * _select_by_peak_distance: peaks are visited from the highest priority down and each kept peak
 * removes its neighbours closer than `distance`. The priority order (an argsort of the heights) is
 * computed by the caller with the same numpy call scipy makes, so ties break identically.
 */
#include "chadsp.h"

int chadsp_local_maxima(const double *x, int64_t n, double height, int64_t *peaks, int64_t *count)
{
    /* Every sample is judged on its own, which gives scipy's result: a rise x[i-1] < x[i] followed by
     * a fall is a peak at i (written unconditionally, counted only when it is one: no branch to
     * mispredict); a rise followed by equal samples is a plateau, scanned as scipy scans it. Samples
     * inside a plateau are never rises, so nothing is counted twice. */
    int64_t m = 0;
    if (n < 0) return CHADSP_EINVAL;
    const int64_t i_max = n - 1;
    for (int64_t i = 1; i < i_max; i++) {
        const double v = x[i], next = x[i + 1];
        const int up = x[i - 1] < v;
        if (up & (next == v)) {                       /* a plateau (rare for real-valued curves) */
            int64_t ahead = i + 1;
            while (ahead < i_max && x[ahead] == v) ahead++;
            if (x[ahead] < v && v >= height) peaks[m++] = (i + ahead - 1) / 2;
            i = ahead - 1;
            continue;
        }
        peaks[m] = i;
        m += up & (next < v) & (v >= height);
    }
    *count = m;
    return 0;
}

int chadsp_select_by_distance(const int64_t *peaks, int64_t npeaks, const int64_t *order, int64_t distance,
                              uint8_t *keep)
{
    if (npeaks < 0 || distance < 1) return CHADSP_EINVAL;
    for (int64_t k = 0; k < npeaks; k++) keep[k] = 1;
    for (int64_t r = npeaks - 1; r >= 0; r--) {
        const int64_t j = order[r];
        if (!keep[j]) continue;
        for (int64_t k = j - 1; k >= 0 && peaks[j] - peaks[k] < distance; k--) keep[k] = 0;
        for (int64_t k = j + 1; k < npeaks && peaks[k] - peaks[j] < distance; k++) keep[k] = 0;
    }
    return 0;
}
