/* Fused KAN layer on per-input knot grids: forward and backward without tensor temporaries.
 *
 * Layouts (row-major, contiguous): x [batch][in]; out and grad_out [batch][out];
 * weight [in][width][out], width = num_basis + 2 (k + 1): the spline coefficients times their
 * scales in rows k+1 .. k+num_basis and zero rows around them, so that samples off the grid
 * read zeros and no bounds test is needed; base_weight [in][out]; scale and shift [in] with
 * u = x * scale + shift the position in knot intervals (knot 0 at u = 0); poly [2 (k+1)][k+1]:
 * row r is the local polynomial of value r in powers of the fractional part of u, row k+1+r
 * its derivative d/du. Value r in interval `cell` belongs to basis function cell - k + r.
 * Non-uniform grids give knots [in][num_basis + k + 1] instead: a sample's interval comes from a
 * binary search, its values from the Cox-de Boor recursion and its slopes are d/dx (scale 1, so
 * the code that multiplies slopes by scale serves both).
 *
 * Work runs input by input over blocks of samples, so consecutive updates hit different rows
 * (no store-to-load chains). Basis values are computed in double; every sum has a fixed order,
 * so results are deterministic (compile with -ffp-contract=off to be independent of FMA).
 *
 * Per-sample quantities (weight row, basis values and slopes, activation and its slope) can be
 * kept in a caller-owned `local` buffer of LOCAL_CHUNK doubles per block of samples and input:
 * the forward fills it (or reads it when the same input comes back) and the backward reads it
 * instead of recomputing.
 *
 * kan_op.cpp includes this file and registers its entry points as PyTorch operators; the file
 * stays valid C (restrict is C++'s __restrict__ there).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
#define restrict __restrict__
#endif

#define MAX_ORDER 15
#define BLOCK 256
enum { ACT_SILU = 0, ACT_IDENTITY = 1, ACT_ZERO = 2 };

typedef struct {
    long batch, n_in, n_out, num_basis;
    int order, activation;
    const double *scale, *shift, *poly;
    const double *knots; /* null: uniform grids (scale, shift, poly) */
} kan_shape;

/* Per-sample quantities of one input over one block of samples (structure of arrays). */
typedef struct {
    int row[BLOCK];                       /* padded weight row of value 0 */
    double value[MAX_ORDER + 1][BLOCK];   /* basis values */
    double slope[MAX_ORDER + 1][BLOCK];   /* their derivatives d/du (backward only) */
    double act[BLOCK], act_slope[BLOCK];  /* base activation and its derivative */
} local_block;

/* Where one block's quantities live: in a local_block or in a chunk of the caller's buffer;
 * value and slope hold rows r at r * BLOCK. */
typedef struct {
    int *row;
    double *value, *slope, *act, *act_slope;
} block_view;

/* doubles per (block, input) chunk of the local buffer: rows as ints, then the rest */
#define LOCAL_CHUNK(rows) ((2 * (rows) + 2) * BLOCK + BLOCK / 2)
/* Sizes of the buffers a caller allocates: the local buffer (doubles) and the packed weights (in
 * the layer's dtype); macros, so that the C++ side can also apply them to symbolic sizes. */
#define KAN_LOCAL_SIZE(batch, n_in, order) (((batch) + BLOCK - 1) / BLOCK * (n_in) * LOCAL_CHUNK((order) + 1))
#define KAN_PACKED_SIZE(n_in, n_out, num_basis, order) ((n_in) * (n_out) * ((num_basis) + 2 * ((order) + 1) + 1))
enum { LOCAL_NONE = 0, LOCAL_FILL = 1, LOCAL_READ = 2 };

#define INLINE static inline __attribute__((always_inline))
typedef double vec4 __attribute__((vector_size(4 * sizeof(double)))); /* GCC/Clang vector extension */
typedef double vec_f64 __attribute__((vector_size(32)));                /* wide layers' vectors of T */
typedef float vec_f32 __attribute__((vector_size(32)));
typedef double half_f64 __attribute__((vector_size(16))); /* and half vectors */
typedef float half_f32 __attribute__((vector_size(16)));
#define LOAD_AS(V, p) ({ V loaded_; memcpy(&loaded_, (p), sizeof loaded_); loaded_; }) /* unaligned */
#define WIDE_OUTPUTS 8 /* layers with this many outputs use wide_forward_sample / backward_wide */
#define WIDE_RUN 1024   /* samples whose gradients backward_wide sums in the layer's precision */

#define LANES 4        /* copies of a small weight gradient, see accumulate_weight_grad */
#define LANE_SIZE 512  /* doubles per copy */
static __thread double lane_buffer[LANES][LANE_SIZE];

static block_view scratch_view(local_block *blk) {
    block_view v = {blk->row, blk->value[0], blk->slope[0], blk->act, blk->act_slope};
    return v;
}

static block_view chunk_view(double *local, int rows, long chunk) {
    double *c = local + chunk * LOCAL_CHUNK(rows);
    block_view v = {(int *)c, c + BLOCK / 2, c + BLOCK / 2 + rows * BLOCK, c + BLOCK / 2 + 2 * rows * BLOCK,
                    c + BLOCK / 2 + (2 * rows + 1) * BLOCK};
    return v;
}

/* Basis values (and slopes) of one input over a block, in loops that vectorise. The interval
 * is clamped to [-1, num_basis + k], which only reaches zero padding rows; a non-finite u has a
 * NaN fractional part, so NaN reaches the output (0 * NaN = NaN). */
INLINE void fill_block(const kan_shape *s, int rows, const double *poly, const double *u, long count, int slopes,
                       block_view blk) {
    const double top = (double)(s->num_basis + rows - 1);
    double f[BLOCK];
    for (long b = 0; b < count; b++) {
        double cell = floor(u[b]);
        f[b] = u[b] - cell;
        cell = cell >= -1.0 ? cell : -1.0; /* NaN too */
        blk.row[b] = (int)(cell <= top ? cell : top) + 1; /* (cell - k) + (k + 1) */
    }
    for (int r = 0; r < (slopes ? 2 * rows : rows); r++) {
        const double *c = poly + r * rows;
        double *out = r < rows ? blk.value + r * BLOCK : blk.slope + (r - rows) * BLOCK;
        for (long b = 0; b < count; b++) {
            double v = c[rows - 1];
            for (int p = rows - 2; p >= 0; p--) v = v * f[b] + c[p];
            out[b] = v;
        }
    }
}

/* Knot j of t[0 .. n-1]; beyond the ends the end intervals repeat. Only functions outside
 * [0, num_basis) (zero weights) use those knots: they just keep them finite. */
INLINE double knot_at(const double *t, long n, long j) {
    if (j < 0) return t[0] + (double)j * (t[1] - t[0]);
    if (j >= n) return t[n - 1] + (double)(j - n + 1) * (t[n - 1] - t[n - 2]);
    return t[j];
}

/* The k+1 B-splines that can be non-zero at x in [t[c], t[c+1]) (value r: function c - k + r) and
 * their derivatives d/dx: the Cox-de Boor recursion on the 2k knots around the interval (The
 * NURBS Book, A2.2); the last level's quotients also give the derivatives. */
INLINE void cox_de_boor(const double *t, long n, long c, int k, double x, double *value, double *slope) {
    double left[MAX_ORDER + 1], right[MAX_ORDER + 1];
    for (int j = 1; j <= k; j++) {
        left[j] = x - knot_at(t, n, c + 1 - j);
        right[j] = knot_at(t, n, c + j) - x;
    }
    value[0] = 1.0;
    for (int r = 0; r <= k; r++) slope[r] = 0.0;
    for (int j = 1; j <= k; j++) {
        double saved = 0.0;
        for (int r = 0; r < j; r++) {
            double quotient = value[r] / (right[r + 1] + left[j - r]);
            value[r] = saved + right[r + 1] * quotient;
            saved = left[j - r] * quotient;
            if (j == k) {
                slope[r] -= k * quotient;
                slope[r + 1] += k * quotient;
            }
        }
        value[j] = saved;
    }
}

/* fill_block on the knots t[0 .. n-1] of one input at the samples x: the interval by binary
 * search, the values by cox_de_boor. Samples off [t[0], t[n-1]) (NaN too) read the zero rows
 * 0 .. k with values and slopes 0 * x, as the Cox-de Boor ops give (NaN for non-finite x). */
INLINE void fill_block_knots(const double *t, long n, int rows, const double *x, long count, int slopes,
                             block_view blk) {
    double value[MAX_ORDER + 1], slope[MAX_ORDER + 1];
    for (long b = 0; b < count; b++) {
        long lo = 0, hi = n - 1; /* t[lo] <= x < t[hi] */
        if (x[b] >= t[0] && x[b] < t[n - 1]) {
            while (hi - lo > 1) {
                long mid = (lo + hi) / 2;
                if (t[mid] <= x[b]) lo = mid; else hi = mid;
            }
            cox_de_boor(t, n, lo, rows - 1, x[b], value, slope);
            blk.row[b] = (int)lo + 1; /* (lo - k) + (k + 1) */
        } else {
            for (int r = 0; r < rows; r++) value[r] = slope[r] = 0.0 * x[b];
            blk.row[b] = 0;
        }
        for (int r = 0; r < rows; r++) {
            blk.value[r * BLOCK + b] = value[r];
            if (slopes) blk.slope[r * BLOCK + b] = slope[r];
        }
    }
}

/* exp(x) for |x| <= 708 to about 1 ulp (NaN stays NaN), written so that it vectorises:
 * x = n ln2 + t with |t| <= ln2 / 2, exp(t) = 1 + t + t^2 q(t) with q from the Taylor series
 * (degree 11) in Estrin's scheme (a short dependency chain), and 2^n built in the exponent bits (adding
 * 1.5 * 2^52 leaves n in the low bits of the sum). */
INLINE double exp_bounded(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10, shifter = 0x1.8p52;
    double rounded = x * 1.44269504088896338700 + shifter, n = rounded - shifter, scale;
    double t = (x - n * ln2_hi) - n * ln2_lo;
    double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double p0 = 1.0 / 2 + t * (1.0 / 6), p1 = 1.0 / 24 + t * (1.0 / 120), p2 = 1.0 / 720 + t * (1.0 / 5040);
    double p3 = 1.0 / 40320 + t * (1.0 / 362880), p4 = 1.0 / 3628800 + t * (1.0 / 39916800);
    double p5 = 1.0 / 479001600 + t * (1.0 / 6227020800.0);
    double tail = ((p0 + t2 * p1) + t4 * (p2 + t2 * p3)) + t8 * (p4 + t2 * p5); /* (exp(t) - 1 - t) / t^2 */
    double sum = 1.0 + (t + t2 * tail);
    unsigned long long bits;
    memcpy(&bits, &rounded, sizeof bits);
    bits = (bits + 1023) << 52;
    memcpy(&scale, &bits, sizeof bits);
    return sum * scale;
}

/* exp(x) for |x| <= 87 in single precision to about 1 ulp (NaN stays NaN), as exp_bounded:
 * Cody-Waite reduction with a 9-bit ln2_hi (n ln2_hi is exact), q of degree 5 (Taylor). */
INLINE float exp_bounded_f(float x) {
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f, shifter = 0x1.8p23f;
    float rounded = x * 1.44269504f + shifter, n = rounded - shifter, scale;
    float t = (x - n * ln2_hi) - n * ln2_lo;
    float t2 = t * t, t4 = t2 * t2;
    float p0 = 1.0f / 2 + t * (1.0f / 6), p1 = 1.0f / 24 + t * (1.0f / 120), p2 = 1.0f / 720 + t * (1.0f / 5040);
    float tail = (p0 + t2 * p1) + t4 * p2; /* (exp(t) - 1 - t) / t^2 */
    float sum = 1.0f + (t + t2 * tail);
    unsigned int bits;
    memcpy(&bits, &rounded, sizeof bits);
    bits = (bits + 127) << 23;
    memcpy(&scale, &bits, sizeof bits);
    return sum * scale;
}

/* silu and its derivative over a block, in double (float64 layers) or single precision
 * (float32 layers: twice the lanes; the layer's own precision). */
INLINE void silu_block_f64(const double *x, long count, block_view blk) {
    for (long b = 0; b < count; b++) {
        double minus = -x[b] < -708.0 ? -708.0 : -x[b]; /* NaN stays NaN */
        double sig = 1.0 / (1.0 + exp_bounded(minus > 708.0 ? 708.0 : minus));
        blk.act[b] = x[b] * sig;
        blk.act_slope[b] = sig * (1.0 + x[b] * (1.0 - sig));
    }
}

INLINE void silu_block_f32(const float *x, long count, block_view blk) {
    for (long b = 0; b < count; b++) {
        float minus = -x[b] < -87.0f ? -87.0f : -x[b]; /* NaN stays NaN */
        float sig = 1.0f / (1.0f + exp_bounded_f(minus > 87.0f ? 87.0f : minus));
        blk.act[b] = (double)(x[b] * sig);
        blk.act_slope[b] = (double)(sig * (1.0f + x[b] * (1.0f - sig)));
    }
}

/* The identity and zero activations and their derivatives over a block. */
INLINE void plain_activation_block(int activation, long count, const double *x, block_view blk) {
    for (long b = 0; b < count; b++) {
        blk.act[b] = activation == ACT_IDENTITY ? x[b] : 0.0;
        blk.act_slope[b] = activation == ACT_IDENTITY ? 1.0 : 0.0;
    }
}

#define T double
#define SUFFIX f64
#include "uniform_kan_body.h"
#undef T
#undef SUFFIX

#define T float
#define SUFFIX f32
#include "uniform_kan_body.h"

#undef T
#undef SUFFIX
