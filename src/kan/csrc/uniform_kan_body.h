/* Kernels for one floating-point type T (included by uniform_kan.c with T and SUFFIX defined). */
#define CAT_(a, b) a##_##b
#define NAME(a, b) CAT_(a, b)
#define VT NAME(vec, SUFFIX)
#define VLEN ((long)(sizeof(VT) / sizeof(T)))
#define HT NAME(half, SUFFIX)

/* Fills blk for input i of samples start .. start + count - 1. */
INLINE void NAME(load_block, SUFFIX)(const kan_shape *s, int rows, const double *poly, const T *restrict x, long start,
                                     long count, long i, int slopes, block_view blk) {
    double xi[BLOCK], u[BLOCK], scale = s->scale[i], shift = s->shift[i];
    T xt[BLOCK];
    for (long b = 0; b < count; b++) {
        xt[b] = x[(start + b) * s->n_in + i];
        xi[b] = (double)xt[b];
    }
    if (s->knots) {
        long n = s->num_basis + rows;
        fill_block_knots(s->knots + i * n, n, rows, xi, count, slopes, blk);
    } else {
        for (long b = 0; b < count; b++) u[b] = xi[b] * scale + shift;
        fill_block(s, rows, poly, u, count, slopes, blk);
    }
    if (s->activation == ACT_SILU)
        NAME(silu_block, SUFFIX)(xt, count, blk);
    else
        plain_activation_block(s->activation, count, xi, blk);
}

/* The quantities of input i over the block at start: read from `local` (LOCAL_READ), computed
 * into it (LOCAL_FILL) or computed into the thread's scratch block (LOCAL_NONE). */
INLINE block_view NAME(block_at, SUFFIX)(const kan_shape *s, int rows, const double *poly, const T *restrict x,
                                         long start, long count, long i, int slopes, double *local, int mode,
                                         local_block *scratch) {
    block_view v = mode == LOCAL_NONE ? scratch_view(scratch) : chunk_view(local, rows, (start / BLOCK) * s->n_in + i);
    if (mode != LOCAL_READ) NAME(load_block, SUFFIX)(s, rows, poly, x, start, count, i, slopes, v);
    return v;
}

/* out row += act bw + sum_r value_r w_r for sample b of a narrow layer, summed in double. */
INLINE void NAME(narrow_forward_sample, SUFFIX)(block_view v, long b, int rows, long n_out, const T *restrict bw,
                                                const T *restrict w, T *restrict row) {
    long o = 0;
    for (; o + 4 <= n_out; o += 4) { /* four outputs at once, each summed as below */
        vec4 base = {bw[o], bw[o + 1], bw[o + 2], bw[o + 3]}, sum = v.act[b] * base;
        for (int r = 0; r < rows; r++) {
            const T *wr = w + r * n_out + o;
            vec4 weights = {wr[0], wr[1], wr[2], wr[3]};
            sum += v.value[r * BLOCK + b] * weights;
        }
        for (int l = 0; l < 4; l++) row[o + l] += (T)sum[l];
    }
    for (; o < n_out; o++) {
        double sum = v.act[b] * bw[o];
        for (int r = 0; r < rows; r++) sum += v.value[r * BLOCK + b] * w[r * n_out + o];
        row[o] += (T)sum;
    }
}

/* Layers with at least WIDE_OUTPUTS outputs: a sample's update of all outputs is long enough to
 * run in vectors of T (VT: 8 floats or 4 doubles, then one half vector HT, then scalars), and
 * these layers sum in their own precision. Each step macro is written once for the three widths;
 * lane by lane they do the same operations in the same order. The forward takes the samples in
 * order (their output rows stream through the cache); the backward takes a block's samples
 * grouped by weight row (a counting sort per block and input), two at a time, so that a pair
 * loads and stores its weight-gradient rows once. */

/* A block's samples sorted by weight row, with their per-sample quantities in that order (T). */
typedef struct {
    int sample[BLOCK];
    T act[BLOCK], act_slope[BLOCK], value[MAX_ORDER + 1][BLOCK], slope[MAX_ORDER + 1][BLOCK];
} NAME(row_groups, SUFFIX);

/* Fills q (slopes too if `slopes`) and first[R] .. first[R + 1] - 1, the positions of the
 * samples that read weight row R; first has width + 2 entries (the last one is scratch). */
INLINE void NAME(group_by_row, SUFFIX)(block_view v, int rows, long count, long width, int slopes, int *first,
                                       NAME(row_groups, SUFFIX) *q) {
    int *next = first + 1; /* next[R]: where the next sample of row R goes */
    memset(first, 0, sizeof(int) * (width + 2));
    for (long b = 0; b < count; b++) next[v.row[b] + 1]++;
    for (long r = 1; r <= width; r++) next[r] += next[r - 1];
    for (long b = 0; b < count; b++) q->sample[next[v.row[b]]++] = (int)b; /* now next[R] == old next[R + 1] */
    for (long k = 0; k < count; k++) {
        long b = q->sample[k];
        q->act[k] = (T)v.act[b];
        q->act_slope[k] = (T)v.act_slope[b];
        for (int r = 0; r < rows; r++) {
            q->value[r][k] = (T)v.value[r * BLOCK + b];
            if (slopes) q->slope[r][k] = (T)v.slope[r * BLOCK + b];
        }
    }
}

/* out[b] += act bw + sum_r value_r w_r over outputs o .. o + |V| - 1 of sample b */
#define WIDE_FORWARD_STEP(V)                                                                   \
    do {                                                                                       \
        V sum = LOAD_AS(V, row + o) + act * LOAD_AS(V, bw + o);                                \
        for (int r = 0; r < rows; r++) sum += value[r] * LOAD_AS(V, w + r * n_out + o);        \
        memcpy(row + o, &sum, sizeof sum);                                                     \
        o += (long)(sizeof(V) / sizeof(T));                                                    \
    } while (0)

/* The same for a wide layer, in the layer's precision. */
INLINE void NAME(wide_forward_sample, SUFFIX)(block_view v, long b, int rows, long n_out, const T *restrict bw,
                                              const T *restrict w, T *restrict row) {
    T act = (T)v.act[b], value[MAX_ORDER + 1];
    for (int r = 0; r < rows; r++) value[r] = (T)v.value[r * BLOCK + b];
    long o = 0;
    while (o + VLEN <= n_out) WIDE_FORWARD_STEP(VT);
    if (o + VLEN / 2 <= n_out) WIDE_FORWARD_STEP(HT);
    while (o < n_out) WIDE_FORWARD_STEP(T);
}

INLINE void NAME(forward_body, SUFFIX)(const kan_shape *s, int rows, long n_out, const T *restrict x,
                                       const T *restrict weight, const T *restrict base_weight, T *restrict out,
                                       double *local, int mode, int slopes, int wide) {
    const long width = s->num_basis + 2 * rows;
    double poly[2 * (MAX_ORDER + 1) * (MAX_ORDER + 1)];
    static __thread local_block blk;
    memcpy(poly, s->poly, sizeof(double) * 2 * rows * rows);
    memset(out, 0, sizeof(T) * s->batch * n_out);
    for (long start = 0; start < s->batch; start += BLOCK) {
        long count = s->batch - start < BLOCK ? s->batch - start : BLOCK;
        for (long i = 0; i < s->n_in; i++) {
            block_view v = NAME(block_at, SUFFIX)(s, rows, poly, x, start, count, i, slopes, local, mode, &blk);
            const T *bw = base_weight + i * n_out, *w_in = weight + i * width * n_out;
            for (long b = 0; b < count; b++) {
                T *row = out + (start + b) * n_out;
                const T *w = w_in + v.row[b] * n_out;
                if (wide)
                    NAME(wide_forward_sample, SUFFIX)(v, b, rows, n_out, bw, w, row);
                else
                    NAME(narrow_forward_sample, SUFFIX)(v, b, rows, n_out, bw, w, row);
            }
        }
    }
}

/* Entry points: common shapes (cubic splines, one output, many outputs) get code specialised
 * for them. */
static void NAME(kan_forward, SUFFIX)(const kan_shape *s, const T *x, const T *weight, const T *base_weight, T *out,
                                      double *local, int mode, int slopes) {
    int wide = s->n_out >= WIDE_OUTPUTS;
    if (s->order == 3 && s->n_out == 1)
        NAME(forward_body, SUFFIX)(s, 4, 1, x, weight, base_weight, out, local, mode, slopes, 0);
    else if (s->order == 3)
        NAME(forward_body, SUFFIX)(s, 4, s->n_out, x, weight, base_weight, out, local, mode, slopes, wide);
    else
        NAME(forward_body, SUFFIX)(s, s->order + 1, s->n_out, x, weight, base_weight, out, local, mode, slopes, wide);
}

/* Adds value[r][b] * grad_out[b] to the weight rows of one input, over a block. Consecutive
 * samples often share rows; small layers give sample b its own copy (lane b % LANES), summed
 * afterwards, so that updates do not wait on each other. */
INLINE void NAME(accumulate_weight_grad, SUFFIX)(block_view blk, int rows, long count, long n_out, long width,
                                                 const T *restrict grad_out, double *restrict grad_weight) {
    long size = width * n_out;
    int lanes = size <= LANE_SIZE ? LANES : 1;
    double *target[LANES];
    for (int l = 0; l < LANES; l++) target[l] = lanes > 1 ? lane_buffer[l] : grad_weight;
    for (int l = 0; l < lanes && lanes > 1; l++) memset(lane_buffer[l], 0, sizeof(double) * size);
    if (rows == 4 && n_out == 1) /* cubic splines, one output: the four rows are adjacent */
        for (long b = 0; b < count; b++) {
            double g = (double)grad_out[b], *gw = target[b % LANES] + blk.row[b];
            vec4 value = {blk.value[b], blk.value[BLOCK + b], blk.value[2 * BLOCK + b], blk.value[3 * BLOCK + b]}, sum;
            memcpy(&sum, gw, sizeof sum);
            sum += value * g;
            memcpy(gw, &sum, sizeof sum);
        }
    else
        for (long b = 0; b < count; b++) {
            const T *g = grad_out + b * n_out;
            double *gw = target[b % LANES] + blk.row[b] * n_out;
            for (int r = 0; r < rows; r++)
                for (long o = 0; o < n_out; o++) gw[r * n_out + o] += blk.value[r * BLOCK + b] * (double)g[o];
        }
    if (lanes == 1) return;
    for (long q = 0; q < size; q++)
        grad_weight[q] += (lane_buffer[0][q] + lane_buffer[1][q]) + (lane_buffer[2][q] + lane_buffer[3][q]);
}

/* grad_weight [in][width][out] and grad_base [in][out] are accumulated in double into zeroed
 * buffers; grad_x [batch][in] is written when not null. */
INLINE void NAME(backward_body, SUFFIX)(const kan_shape *s, int rows, long n_out, const T *restrict x,
                                        const T *restrict weight, const T *restrict base_weight,
                                        const T *restrict grad_out, double *restrict grad_weight,
                                        double *restrict grad_base, T *restrict grad_x, double *local) {
    const long n_in = s->n_in, width = s->num_basis + 2 * rows;
    double poly[2 * (MAX_ORDER + 1) * (MAX_ORDER + 1)];
    static __thread local_block blk;
    memcpy(poly, s->poly, sizeof(double) * 2 * rows * rows);
    for (long start = 0; start < s->batch; start += BLOCK) {
        long count = s->batch - start < BLOCK ? s->batch - start : BLOCK;
        for (long i = 0; i < n_in; i++) {
            block_view v = NAME(block_at, SUFFIX)(s, rows, poly, x, start, count, i, grad_x != 0, local,
                                                  local ? LOCAL_READ : LOCAL_NONE, &blk);
            const T *bw = base_weight + i * n_out, *w_in = weight + i * width * n_out;
            double *gw_in = grad_weight + i * width * n_out, *gb = grad_base + i * n_out;
            for (long o = 0; o < n_out; o++) { /* four partial sums: no chain of dependent additions */
                const T *g = grad_out + start * n_out + o;
                double sum[4] = {0.0, 0.0, 0.0, 0.0};
                long b = 0;
                for (; b + 4 <= count; b += 4)
                    for (int l = 0; l < 4; l++) sum[l] += v.act[b + l] * (double)g[(b + l) * n_out];
                for (; b < count; b++) sum[0] += v.act[b] * (double)g[b * n_out];
                gb[o] += (sum[0] + sum[1]) + (sum[2] + sum[3]);
            }
            NAME(accumulate_weight_grad, SUFFIX)(v, rows, count, n_out, width, grad_out + start * n_out, gw_in);
            if (!grad_x) continue;
            double scale = s->scale[i];
            for (long b = 0; b < count; b++) {
                const T *g = grad_out + (start + b) * n_out, *w = w_in + v.row[b] * n_out;
                /* output o adds to lane o % 4: four outputs at once, then the rest one by one */
                vec4 lanes = {0.0, 0.0, 0.0, 0.0};
                long o = 0;
                for (; o + 4 <= n_out; o += 4) {
                    vec4 spline = {0.0, 0.0, 0.0, 0.0};
                    for (int r = 0; r < rows; r++) {
                        const T *wr = w + r * n_out + o;
                        vec4 weights = {wr[0], wr[1], wr[2], wr[3]};
                        spline += v.slope[r * BLOCK + b] * weights;
                    }
                    vec4 grads = {g[o], g[o + 1], g[o + 2], g[o + 3]}, base = {bw[o], bw[o + 1], bw[o + 2], bw[o + 3]};
                    lanes += grads * (spline * scale + v.act_slope[b] * base);
                }
                double dx[4];
                memcpy(dx, &lanes, sizeof dx);
                for (; o < n_out; o++) {
                    double spline = 0.0;
                    for (int r = 0; r < rows; r++) spline += v.slope[r * BLOCK + b] * w[r * n_out + o];
                    dx[o % 4] += (double)g[o] * (spline * scale + v.act_slope[b] * bw[o]);
                }
                grad_x[(start + b) * n_in + i] = (T)((dx[0] + dx[1]) + (dx[2] + dx[3]));
            }
        }
    }
}

/* Adds two samples' (p0, p1: positions in q, same weight row) weight and base gradients to `a`
 * (their weight rows in acc) and acc_base over outputs o .. o + |V| - 1, and (with_dx) their input
 * gradient terms grad (scale sum_r slope_r w_r + act_slope bw) to dx0 and dx1. */
#define WIDE_BACKWARD_STEP(V, dx0, dx1)                                                                  \
    do {                                                                                                 \
        V g0 = LOAD_AS(V, g0_row + o), g1 = LOAD_AS(V, g1_row + o);                                      \
        V base = LOAD_AS(V, acc_base + o) + (q->act[p0] * g0 + act1 * g1), spline0 = {0}, spline1 = {0}; \
        memcpy(acc_base + o, &base, sizeof base);                                                        \
        for (int r = 0; r < rows; r++) {                                                                 \
            V sum = LOAD_AS(V, a + r * n_out + o) + (q->value[r][p0] * g0 + value1[r] * g1);              \
            memcpy(a + r * n_out + o, &sum, sizeof sum);                                                 \
            if (with_dx) {                                                                               \
                V weights = LOAD_AS(V, w + r * n_out + o);                                               \
                spline0 += q->slope[r][p0] * weights;                                                     \
                spline1 += slope1[r] * weights;                                                          \
            }                                                                                            \
        }                                                                                                \
        if (with_dx) {                                                                                   \
            V bws = LOAD_AS(V, bw + o);                                                                  \
            dx0 += g0 * (spline0 * scale + q->act_slope[p0] * bws);                                       \
            dx1 += g1 * (spline1 * scale + act_slope1 * bws);                                            \
        }                                                                                                \
        o += (long)(sizeof(V) / sizeof(T));                                                              \
    } while (0)

/* A sample's input gradient from its VT lanes, half-vector lanes and scalar sum. */
INLINE T NAME(input_grad_sum, SUFFIX)(VT lanes, HT half, T tail) {
    T dx[VLEN], halves[VLEN / 2];
    memcpy(dx, &lanes, sizeof dx);
    memcpy(halves, &half, sizeof halves);
    for (long l = 0; l < VLEN / 2; l++) dx[l] += halves[l];
    for (long step = VLEN / 2; step > 0; step /= 2) /* pairwise: lanes l and l + step */
        for (long l = 0; l < step; l++) dx[l] += dx[l + step];
    return dx[0] + tail;
}

/* The gradients of the samples of one block that read weight row `row` of input i (positions
 * lo .. hi - 1 in q), two samples at a time (a lone last one is paired with the zero row `zeros`). */
INLINE void NAME(backward_wide_group, SUFFIX)(const NAME(row_groups, SUFFIX) *restrict q, long lo, long hi, int rows,
                                              long n_out, T scale, const T *restrict w, const T *restrict bw,
                                              const T *restrict grad_block, const T *restrict zeros, T *restrict a,
                                              T *restrict acc_base, T *restrict grad_x, long n_in, int with_dx) {
    for (long p0 = lo; p0 < hi; p0 += 2) {
        long p1 = p0 + 1 < hi ? p0 + 1 : -1;
        const T *g0_row = grad_block + q->sample[p0] * n_out, *g1_row = p1 >= 0 ? grad_block + q->sample[p1] * n_out : zeros;
        T act1 = p1 >= 0 ? q->act[p1] : 0, act_slope1 = p1 >= 0 ? q->act_slope[p1] : 0;
        T value1[MAX_ORDER + 1], slope1[MAX_ORDER + 1];
        for (int r = 0; r < rows; r++) {
            value1[r] = p1 >= 0 ? q->value[r][p1] : 0;
            slope1[r] = p1 >= 0 && with_dx ? q->slope[r][p1] : 0;
        }
        VT lanes0 = {0}, lanes1 = {0};
        HT half0 = {0}, half1 = {0};
        T tail0 = 0, tail1 = 0;
        long o = 0;
        while (o + VLEN <= n_out) WIDE_BACKWARD_STEP(VT, lanes0, lanes1);
        if (o + VLEN / 2 <= n_out) WIDE_BACKWARD_STEP(HT, half0, half1);
        while (o < n_out) WIDE_BACKWARD_STEP(T, tail0, tail1);
        if (!with_dx) continue;
        grad_x[q->sample[p0] * n_in] = NAME(input_grad_sum, SUFFIX)(lanes0, half0, tail0);
        if (p1 >= 0) grad_x[q->sample[p1] * n_in] = NAME(input_grad_sum, SUFFIX)(lanes1, half1, tail1);
    }
}

/* Wide layers' backward. Over each run of up to WIDE_RUN samples, an input's gradients add up in
 * T in a scratch `acc` ([width + 1][out]: weight rows, then the base row; small enough to stay in
 * cache; then n_out zeros), which then joins the float64 gradients. A sample's input gradient sums its
 * VT tiles in VLEN lanes, then its half-vector tile into the first lanes, the lanes pairwise, then
 * its remaining outputs. Returns 0, or -1 without memory. */
INLINE int NAME(backward_wide, SUFFIX)(const kan_shape *s, int rows, const T *restrict x, const T *restrict weight,
                                       const T *restrict base_weight, const T *restrict grad_out,
                                       double *restrict grad_weight, double *restrict grad_base, T *restrict grad_x,
                                       double *local) {
    const long n_in = s->n_in, n_out = s->n_out, width = s->num_basis + 2 * rows;
    double poly[2 * (MAX_ORDER + 1) * (MAX_ORDER + 1)];
    static __thread local_block blk;
    static __thread NAME(row_groups, SUFFIX) q;
    int *first = (int *)malloc(sizeof(int) * (width + 2));
    T *acc = (T *)malloc(sizeof(T) * (size_t)((width + 2) * n_out));
    if (!first || !acc) {
        free(first);
        free(acc);
        return -1;
    }
    memcpy(poly, s->poly, sizeof(double) * 2 * rows * rows);
    T *acc_base = acc + width * n_out, *zeros = acc + (width + 1) * n_out;
    memset(zeros, 0, sizeof(T) * n_out);
    for (long run = 0; run < s->batch; run += WIDE_RUN) {
        long run_end = s->batch - run < WIDE_RUN ? s->batch : run + WIDE_RUN;
        for (long i = 0; i < n_in; i++) {
            const T *bw = base_weight + i * n_out, scale = (T)s->scale[i];
            memset(acc, 0, sizeof(T) * (width + 1) * n_out);
            for (long start = run; start < run_end; start += BLOCK) {
                long count = run_end - start < BLOCK ? run_end - start : BLOCK;
                block_view v = NAME(block_at, SUFFIX)(s, rows, poly, x, start, count, i, grad_x != 0, local,
                                                      local ? LOCAL_READ : LOCAL_NONE, &blk);
                NAME(group_by_row, SUFFIX)(v, rows, count, width, grad_x != 0, first, &q);
                for (long row = 0; row < width; row++) { /* two calls: with_dx a constant in each */
                    if (first[row] == first[row + 1]) continue;
                    const T *w = weight + (i * width + row) * n_out, *grad_block = grad_out + start * n_out;
                    if (grad_x)
                        NAME(backward_wide_group, SUFFIX)(&q, first[row], first[row + 1], rows, n_out, scale, w, bw,
                                                          grad_block, zeros, acc + row * n_out, acc_base,
                                                          grad_x + start * n_in + i, n_in, 1);
                    else
                        NAME(backward_wide_group, SUFFIX)(&q, first[row], first[row + 1], rows, n_out, scale, w, bw,
                                                          grad_block, zeros, acc + row * n_out, acc_base, 0, n_in, 0);
                }
            }
            double *gw_in = grad_weight + i * width * n_out, *gb = grad_base + i * n_out;
            for (long e = 0; e < width * n_out; e++) gw_in[e] += (double)acc[e];
            for (long o = 0; o < n_out; o++) gb[o] += (double)acc_base[o];
        }
    }
    free(first);
    free(acc);
    return 0;
}

/* Returns 0, or -1 without scratch memory. */
static int NAME(kan_backward, SUFFIX)(const kan_shape *s, const T *x, const T *weight, const T *base_weight,
                                      const T *grad_out, double *grad_weight, double *grad_base, T *grad_x,
                                      double *local) {
    if (s->n_out >= WIDE_OUTPUTS && s->order == 3)
        return NAME(backward_wide, SUFFIX)(s, 4, x, weight, base_weight, grad_out, grad_weight, grad_base, grad_x,
                                           local);
    if (s->n_out >= WIDE_OUTPUTS)
        return NAME(backward_wide, SUFFIX)(s, s->order + 1, x, weight, base_weight, grad_out, grad_weight, grad_base,
                                           grad_x, local);
    if (s->order == 3 && s->n_out == 1)
        NAME(backward_body, SUFFIX)(s, 4, 1, x, weight, base_weight, grad_out, grad_weight, grad_base, grad_x, local);
    else if (s->order == 3)
        NAME(backward_body, SUFFIX)(s, 4, s->n_out, x, weight, base_weight, grad_out, grad_weight, grad_base, grad_x,
                                    local);
    else
        NAME(backward_body, SUFFIX)(s, s->order + 1, s->n_out, x, weight, base_weight, grad_out, grad_weight, grad_base,
                                    grad_x, local);
    return 0;
}

/* Layer-level entry points: parameters in, parameter gradients out, so that a layer needs one
 * call per pass. coef [in][out][num_basis], scale_base / scale_spline / mask [in][out] (mask may
 * be null: all edges numeric); packed [in][width][out] followed by [in][out] base weights, filled
 * by the forward and read by the backward. local: null, or the per-sample buffer (see the top of
 * uniform_kan.c) to fill (mode LOCAL_FILL, with slopes if `slopes`) or to read (LOCAL_READ). */
void NAME(kan_layer_forward, SUFFIX)(const kan_shape *s, const T *x, const T *coef, const T *scale_base,
                                     const T *scale_spline, const T *mask, T *packed, T *out, double *local, int mode,
                                     int slopes) {
    const long n_in = s->n_in, n_out = s->n_out, nb = s->num_basis, rows = s->order + 1, width = nb + 2 * rows;
    T *base = packed + n_in * width * n_out;
    memset(packed, 0, sizeof(T) * n_in * width * n_out);
    for (long i = 0; i < n_in; i++)
        for (long o = 0; o < n_out; o++) {
            long edge = i * n_out + o;
            T keep = mask ? mask[edge] : (T)1;
            base[edge] = scale_base[edge] * keep;
            T spline_scale = scale_spline[edge] * keep;
            for (long j = 0; j < nb; j++) packed[(i * width + rows + j) * n_out + o] = coef[edge * nb + j] * spline_scale;
        }
    NAME(kan_forward, SUFFIX)(s, x, packed, base, out, local, local ? mode : LOCAL_NONE, slopes);
}

/* Returns 0, or -1 without scratch memory. grad_x may be null; local: null
 * (recompute) or a buffer the forward filled, with slopes when grad_x is wanted. */
int NAME(kan_layer_backward, SUFFIX)(const kan_shape *s, const T *x, const T *coef, const T *scale_spline,
                                     const T *mask, const T *packed, const T *grad_out, T *grad_coef,
                                     T *grad_scale_base, T *grad_scale_spline, T *grad_x, double *local) {
    const long n_in = s->n_in, n_out = s->n_out, nb = s->num_basis, rows = s->order + 1, width = nb + 2 * rows;
    double *grad_weight = (double *)calloc((size_t)(n_in * width * n_out + n_in * n_out), sizeof(double));
    if (!grad_weight) return -1;
    double *grad_base = grad_weight + n_in * width * n_out;
    int status = NAME(kan_backward, SUFFIX)(s, x, packed, packed + n_in * width * n_out, grad_out, grad_weight,
                                            grad_base, grad_x, local);
    for (long i = 0; i < n_in; i++)
        for (long o = 0; o < n_out; o++) {
            long edge = i * n_out + o;
            double keep = mask ? (double)mask[edge] : 1.0, spline_scale = (double)scale_spline[edge] * keep, dot = 0.0;
            for (long j = 0; j < nb; j++) {
                double g = grad_weight[(i * width + rows + j) * n_out + o];
                grad_coef[edge * nb + j] = (T)(g * spline_scale);
                dot += g * (double)coef[edge * nb + j];
            }
            grad_scale_spline[edge] = (T)(dot * keep);
            grad_scale_base[edge] = (T)(grad_base[edge] * keep);
        }
    free(grad_weight);
    return status;
}

#undef WIDE_FORWARD_STEP
#undef WIDE_BACKWARD_STEP
#undef HT
#undef VLEN
#undef VT
#undef NAME
#undef CAT_
