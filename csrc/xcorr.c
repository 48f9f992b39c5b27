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
    int64_t m = 0;
    if (n < 0) return CHADSP_EINVAL;
    const int64_t i_max = n - 1;
    int64_t i = 1;
    while (i < i_max) {
        if (x[i - 1] < x[i]) {
            int64_t ahead = i + 1;
            while (ahead < i_max && x[ahead] == x[i]) ahead++;
            if (x[ahead] < x[i]) {
                if (x[i] >= height) peaks[m++] = (i + ahead - 1) / 2;
                i = ahead;
            }
        }
        i++;
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
