#include "tether_fft.h"
#include <math.h>
#include <stdlib.h>

/* include/tether_fft.h says why this exists. N real samples are transformed as one complex
   transform of M = N/2 points (even samples as real parts, odd ones as imaginary) and a pass
   that separates the two. The complex transform is a Stockham autosort FFT (no bit reversal)
   in split real/imaginary arrays, radix 4 first, then 2, 3, 5: stage s holds s interleaved
   sub-transforms, so from the second stage on each butterfly's innermost loop runs over at
   least 4 neighbouring values, which the compiler turns into SIMD; the first stage (s = 1)
   runs its innermost loop over the butterflies instead. */

#define MAX_STAGES 16
#define TAU 6.283185307179586476925

struct tether_fft {
    int n, m, stages;
    int radix[MAX_STAGES];
    /* Stage twiddles w^(j p), j = 1..r-1, p < m_stage: at [(j - 1) * m_stage + p]. */
    float *twr[MAX_STAGES], *twi[MAX_STAGES];
    float *postr, *posti;  /* W_N^k, k < M: separating (and joining) the even and odd halves */
    float *ar, *ai, *br, *bi;
};

static int factor(int n, int *radix) {
    static const int order[] = {4, 2, 3, 5};
    int count = 0;
    for (int i = 0; i < 4 && n > 1; i++)
        while (n % order[i] == 0) {
            if (count == MAX_STAGES) return -1;
            radix[count++] = order[i];
            n /= order[i];
        }
    return n == 1 ? count : -1;
}

/* y_j = (sum_k a_k w_r^(j k)) * tw_j, w_r = e^(-2 pi i / r); tw_0 = 1. */
static inline void dft2(const float *ar, const float *ai, float *yr, float *yi, const float *tr, const float *ti) {
    float dr = ar[0] - ar[1], di = ai[0] - ai[1];
    yr[0] = ar[0] + ar[1]; yi[0] = ai[0] + ai[1];
    yr[1] = dr * tr[0] - di * ti[0]; yi[1] = dr * ti[0] + di * tr[0];
}

static inline void dft4(const float *ar, const float *ai, float *yr, float *yi, const float *tr, const float *ti) {
    float t0r = ar[0] + ar[2], t0i = ai[0] + ai[2];
    float t1r = ar[0] - ar[2], t1i = ai[0] - ai[2];
    float t2r = ar[1] + ar[3], t2i = ai[1] + ai[3];
    float t3r = ai[1] - ai[3], t3i = ar[3] - ar[1]; /* (a1 - a3) * -i */
    float u1r = t1r + t3r, u1i = t1i + t3i;
    float u2r = t0r - t2r, u2i = t0i - t2i;
    float u3r = t1r - t3r, u3i = t1i - t3i;
    yr[0] = t0r + t2r; yi[0] = t0i + t2i;
    yr[1] = u1r * tr[0] - u1i * ti[0]; yi[1] = u1r * ti[0] + u1i * tr[0];
    yr[2] = u2r * tr[1] - u2i * ti[1]; yi[2] = u2r * ti[1] + u2i * tr[1];
    yr[3] = u3r * tr[2] - u3i * ti[2]; yi[3] = u3r * ti[2] + u3i * tr[2];
}

static inline void dft3(const float *ar, const float *ai, float *yr, float *yi, const float *tr, const float *ti) {
    const float h = 0.86602540378443864676f; /* sin(2 pi / 3) */
    float sr = ar[1] + ar[2], si = ai[1] + ai[2];
    float dr = ar[1] - ar[2], di = ai[1] - ai[2];
    float cr = ar[0] - 0.5f * sr, ci = ai[0] - 0.5f * si;
    float u1r = cr + h * di, u1i = ci - h * dr; /* c - i h d */
    float u2r = cr - h * di, u2i = ci + h * dr; /* c + i h d */
    yr[0] = ar[0] + sr; yi[0] = ai[0] + si;
    yr[1] = u1r * tr[0] - u1i * ti[0]; yi[1] = u1r * ti[0] + u1i * tr[0];
    yr[2] = u2r * tr[1] - u2i * ti[1]; yi[2] = u2r * ti[1] + u2i * tr[1];
}

static inline void dft5(const float *ar, const float *ai, float *yr, float *yi, const float *tr, const float *ti) {
    const float c1 = 0.30901699437494742410f, c2 = -0.80901699437494742410f; /* cos 2pi/5, cos 4pi/5 */
    const float s1 = 0.95105651629515357212f, s2 = 0.58778525229247312917f;  /* sin 2pi/5, sin 4pi/5 */
    float b1r = ar[1] + ar[4], b1i = ai[1] + ai[4], b2r = ar[2] + ar[3], b2i = ai[2] + ai[3];
    float d1r = ar[1] - ar[4], d1i = ai[1] - ai[4], d2r = ar[2] - ar[3], d2i = ai[2] - ai[3];
    float tAr = ar[0] + c1 * b1r + c2 * b2r, tAi = ai[0] + c1 * b1i + c2 * b2i;
    float tBr = ar[0] + c2 * b1r + c1 * b2r, tBi = ai[0] + c2 * b1i + c1 * b2i;
    float uAr = s1 * d1r + s2 * d2r, uAi = s1 * d1i + s2 * d2i;
    float uBr = s2 * d1r - s1 * d2r, uBi = s2 * d1i - s1 * d2i;
    /* y1 = tA - i uA, y2 = tB - i uB, y3 = tB + i uB, y4 = tA + i uA */
    float vr[4] = {tAr + uAi, tBr + uBi, tBr - uBi, tAr - uAi};
    float vi[4] = {tAi - uAr, tBi - uBr, tBi + uBr, tAi + uAr};
    yr[0] = ar[0] + b1r + b2r; yi[0] = ai[0] + b1i + b2i;
    for (int j = 0; j < 4; j++) {
        yr[j + 1] = vr[j] * tr[j] - vi[j] * ti[j];
        yi[j + 1] = vr[j] * ti[j] + vi[j] * tr[j];
    }
}

#define DFT(R, ar, ai, yr, yi, tr, ti) \
    (R == 4 ? dft4(ar, ai, yr, yi, tr, ti) : R == 2 ? dft2(ar, ai, yr, yi, tr, ti) : \
     R == 3 ? dft3(ar, ai, yr, yi, tr, ti) : dft5(ar, ai, yr, yi, tr, ti))

/* One stage of radix R: s interleaved sub-transforms of n = R m points each. */
#define STAGE(R) static void stage##R(int m, int s, const float *restrict xr, const float *restrict xi, \
                                      float *restrict yr, float *restrict yi, \
                                      const float *restrict twr, const float *restrict twi) { \
    float ar[R], ai[R], or_[R], oi[R], tr[R - 1], ti[R - 1]; \
    if (s == 1) { /* innermost over the butterflies */ \
        for (int p = 0; p < m; p++) { \
            for (int k = 0; k < R; k++) { ar[k] = xr[p + k * m]; ai[k] = xi[p + k * m]; } \
            for (int j = 0; j < R - 1; j++) { tr[j] = twr[j * m + p]; ti[j] = twi[j * m + p]; } \
            DFT(R, ar, ai, or_, oi, tr, ti); \
            for (int j = 0; j < R; j++) { yr[R * p + j] = or_[j]; yi[R * p + j] = oi[j]; } \
        } \
        return; \
    } \
    for (int p = 0; p < m; p++) { \
        for (int j = 0; j < R - 1; j++) { tr[j] = twr[j * m + p]; ti[j] = twi[j * m + p]; } \
        const float *restrict x0r = xr + (size_t)p * s, *restrict x0i = xi + (size_t)p * s; \
        float *restrict y0r = yr + (size_t)R * p * s, *restrict y0i = yi + (size_t)R * p * s; \
        for (int q = 0; q < s; q++) { /* innermost over the sub-transforms: SIMD */ \
            for (int k = 0; k < R; k++) { ar[k] = x0r[(size_t)k * m * s + q]; ai[k] = x0i[(size_t)k * m * s + q]; } \
            DFT(R, ar, ai, or_, oi, tr, ti); \
            for (int j = 0; j < R; j++) { y0r[(size_t)j * s + q] = or_[j]; y0i[(size_t)j * s + q] = oi[j]; } \
        } \
    } \
}
STAGE(2)
STAGE(3)
STAGE(4)
STAGE(5)

tether_fft *tether_fft_new(int n) {
    if (n < 8 || n % 2) return NULL;
    tether_fft *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->n = n;
    f->m = n / 2;
    f->stages = factor(f->m, f->radix);
    if (f->stages < 0) {
        free(f);
        return NULL;
    }
    int m = f->m, ok = 1, len = m;
    for (int st = 0; st < f->stages; st++) {
        int r = f->radix[st], sub = len / r;
        f->twr[st] = malloc(sizeof(float) * (size_t)(sub * (r - 1)));
        f->twi[st] = malloc(sizeof(float) * (size_t)(sub * (r - 1)));
        if (!f->twr[st] || !f->twi[st]) { ok = 0; break; }
        for (int j = 1; j < r; j++)
            for (int p = 0; p < sub; p++) {
                double a = -TAU * (double)(j * p) / (double)len;
                f->twr[st][(j - 1) * sub + p] = (float)cos(a);
                f->twi[st][(j - 1) * sub + p] = (float)sin(a);
            }
        len = sub;
    }
    f->postr = malloc(sizeof(float) * (size_t)m);
    f->posti = malloc(sizeof(float) * (size_t)m);
    f->ar = malloc(sizeof(float) * (size_t)m);
    f->ai = malloc(sizeof(float) * (size_t)m);
    f->br = malloc(sizeof(float) * (size_t)m);
    f->bi = malloc(sizeof(float) * (size_t)m);
    if (!ok || !f->postr || !f->posti || !f->ar || !f->ai || !f->br || !f->bi) {
        tether_fft_free(f);
        return NULL;
    }
    for (int k = 0; k < m; k++) {
        double a = -TAU * (double)k / (double)n;
        f->postr[k] = (float)cos(a);
        f->posti[k] = (float)sin(a);
    }
    return f;
}

void tether_fft_free(tether_fft *f) {
    if (!f) return;
    for (int st = 0; st < MAX_STAGES; st++) {
        free(f->twr[st]);
        free(f->twi[st]);
    }
    free(f->postr); free(f->posti);
    free(f->ar); free(f->ai); free(f->br); free(f->bi);
    free(f);
}

/* The complex transform of (ar, ai); returns where the result is (ar or br). */
static int complex_forward(tether_fft *f) {
    float *xr = f->ar, *xi = f->ai, *yr = f->br, *yi = f->bi;
    int len = f->m, s = 1;
    for (int st = 0; st < f->stages; st++) {
        int r = f->radix[st], m = len / r;
        switch (r) {
        case 4: stage4(m, s, xr, xi, yr, yi, f->twr[st], f->twi[st]); break;
        case 2: stage2(m, s, xr, xi, yr, yi, f->twr[st], f->twi[st]); break;
        case 3: stage3(m, s, xr, xi, yr, yi, f->twr[st], f->twi[st]); break;
        default: stage5(m, s, xr, xi, yr, yi, f->twr[st], f->twi[st]); break;
        }
        float *t = xr; xr = yr; yr = t;
        t = xi; xi = yi; yi = t;
        len = m;
        s *= r;
    }
    return xr == f->br;
}

void tether_fft_forward(tether_fft *f, const float *in, float *out, float scale) {
    const int m = f->m;
    for (int i = 0; i < m; i++) {
        f->ar[i] = in[2 * i];
        f->ai[i] = in[2 * i + 1];
    }
    const int in_b = complex_forward(f);
    const float *restrict zr = in_b ? f->br : f->ar, *restrict zi = in_b ? f->bi : f->ai;
    out[0] = (zr[0] + zi[0]) * scale;
    out[f->n - 1] = (zr[0] - zi[0]) * scale;
    const float half = 0.5f * scale;
    for (int k = 1; k < m; k++) {
        /* E = (Z[k] + conj Z[M-k]) / 2, O = (Z[k] - conj Z[M-k]) / 2i, X[k] = E + W_N^k O */
        float pr = zr[k], pi = zi[k], qr = zr[m - k], qi = -zi[m - k];
        float er = pr + qr, ei = pi + qi;
        float or_ = pi - qi, oi = qr - pr;
        float wr = f->postr[k], wi = f->posti[k];
        out[2 * k - 1] = half * (er + or_ * wr - oi * wi);
        out[2 * k] = half * (ei + or_ * wi + oi * wr);
    }
}

void tether_fft_inverse(tether_fft *f, const float *in, float *out) {
    const int m = f->m, n = f->n;
    float *restrict zr = f->ar, *restrict zi = f->ai;
    /* Z'[k] = E' + i O', E' = X[k] + conj X[M-k], O' = (X[k] - conj X[M-k]) W_N^-k: the
       transform of (even, odd) samples. Conjugated in and out, so that the forward complex
       transform computes the inverse one. */
    /* k = 0 pairs the two real values X[0] and X[M]. */
    zr[0] = in[0] + in[n - 1];
    zi[0] = -(in[0] - in[n - 1]);
    for (int k = 1; k < m; k++) {
        int c = m - k;
        float xr = in[2 * k - 1], xi = in[2 * k], yr = in[2 * c - 1], yi = -in[2 * c];
        float er = xr + yr, ei = xi + yi, dr = xr - yr, di = xi - yi;
        float wr = f->postr[k], wi = -f->posti[k];
        float or_ = dr * wr - di * wi, oi = dr * wi + di * wr;
        zr[k] = er - oi;
        zi[k] = -(ei + or_);
    }
    const int in_b = complex_forward(f);
    const float *restrict rr = in_b ? f->br : f->ar, *restrict ri = in_b ? f->bi : f->ai;
    for (int i = 0; i < m; i++) {
        out[2 * i] = rr[i];
        out[2 * i + 1] = -ri[i];
    }
}
