/* Kernels for one floating-point type T (included by uniform_kan.c with T and SUFFIX defined). */
#define CAT_(a, b) a##_##b
#define NAME(a, b) CAT_(a, b)

/* Fills blk for input i of samples start .. start + count - 1. */
INLINE void NAME(load_block, SUFFIX)(const kan_shape *s, int rows, const double *poly, const T *restrict x, long start,
                                     long count, long i, int slopes, block_view blk) {
    double xi[BLOCK], u[BLOCK], scale = s->scale[i], shift = s->shift[i];
    T xt[BLOCK];
    for (long b = 0; b < count; b++) {
        xt[b] = x[(start + b) * s->n_in + i];
        xi[b] = (double)xt[b];
        u[b] = xi[b] * scale + shift;
    }
    fill_block(s, rows, poly, u, count, slopes, blk);
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

INLINE void NAME(forward_body, SUFFIX)(const kan_shape *s, int rows, long n_out, const T *restrict x,
                                       const T *restrict weight, const T *restrict base_weight, T *restrict out,
                                       double *local, int mode, int slopes) {
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
        }
    }
}

/* Entry points: common shapes (cubic splines, one output) get code specialised for them. */
static void NAME(kan_forward, SUFFIX)(const kan_shape *s, const T *x, const T *weight, const T *base_weight, T *out,
                                      double *local, int mode, int slopes) {
    if (s->order == 3 && s->n_out == 1)
        NAME(forward_body, SUFFIX)(s, 4, 1, x, weight, base_weight, out, local, mode, slopes);
    else if (s->order == 3)
        NAME(forward_body, SUFFIX)(s, 4, s->n_out, x, weight, base_weight, out, local, mode, slopes);
    else
        NAME(forward_body, SUFFIX)(s, s->order + 1, s->n_out, x, weight, base_weight, out, local, mode, slopes);
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

static void NAME(kan_backward, SUFFIX)(const kan_shape *s, const T *x, const T *weight, const T *base_weight,
                                const T *grad_out, double *grad_weight, double *grad_base, T *grad_x, double *local) {
    if (s->order == 3 && s->n_out == 1)
        NAME(backward_body, SUFFIX)(s, 4, 1, x, weight, base_weight, grad_out, grad_weight, grad_base, grad_x, local);
    else if (s->order == 3)
        NAME(backward_body, SUFFIX)(s, 4, s->n_out, x, weight, base_weight, grad_out, grad_weight, grad_base, grad_x,
                                    local);
    else
        NAME(backward_body, SUFFIX)(s, s->order + 1, s->n_out, x, weight, base_weight, grad_out, grad_weight, grad_base,
                                    grad_x, local);
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

/* Returns 0, or -1 when scratch memory could not be allocated. grad_x may be null; local: null
 * (recompute) or a buffer the forward filled, with slopes when grad_x is wanted. */
int NAME(kan_layer_backward, SUFFIX)(const kan_shape *s, const T *x, const T *coef, const T *scale_spline,
                                     const T *mask, const T *packed, const T *grad_out, T *grad_coef,
                                     T *grad_scale_base, T *grad_scale_spline, T *grad_x, double *local) {
    const long n_in = s->n_in, n_out = s->n_out, nb = s->num_basis, rows = s->order + 1, width = nb + 2 * rows;
    double *grad_weight = calloc((size_t)(n_in * width * n_out + n_in * n_out), sizeof(double));
    if (!grad_weight) return -1;
    double *grad_base = grad_weight + n_in * width * n_out;
    NAME(kan_backward, SUFFIX)(s, x, packed, packed + n_in * width * n_out, grad_out, grad_weight, grad_base, grad_x,
                               local);
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
    return 0;
}

#undef NAME
#undef CAT_
