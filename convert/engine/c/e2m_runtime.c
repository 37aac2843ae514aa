/* e2micro engine runtime: TFLite's int8 reference arithmetic (double-rounding build, as TFLM's
 * reference kernels), row by row. Pasted into every generated e2m_model.c; C99, no heap. */
#include <string.h>

#define E2M_MIN(a, b) ((a) < (b) ? (a) : (b))
#define E2M_MAX(a, b) ((a) > (b) ? (a) : (b))
#define E2M_FROM_X 0   /* the depthwise reads the block input directly */
#define E2M_EXPAND 1   /* rows come from a 1x1 expansion of the block input */
#define E2M_STEM 2     /* rows come from the masked stem convolution of the image */

/* index of channel c's requantisation parameters: shared by qtie channels (qtie > 0), or by the
 * rot90 orbit's copies (qtie = -q: per field and base filter) */
#define E2M_QI(c, qtie, n) ((qtie) > 0 ? (c) / (qtie) : ((c) / (n)) * -(qtie) + (c) % -(qtie))

#ifdef E2M_TRACE /* test builds: every block output and the pooled vector go to this hook */
void e2m_trace(const int8_t *data, size_t len);
#define E2M_TRACE_DATA(p, n) e2m_trace((p), (n))
#else
#define E2M_TRACE_DATA(p, n) ((void)0)
#endif

/* gemmlowp::SaturatingRoundingDoublingHighMul */
static int32_t e2m_srdhm(int32_t a, int32_t b) {
  int64_t ab;
  int32_t nudge;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp::RoundingDivideByPOT */
static int32_t e2m_rdbpot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32_t, int32_t, int) */
static int32_t e2m_mbqm(int32_t x, int32_t m, int shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return e2m_rdbpot(e2m_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), m), right);
}

static int8_t e2m_requant(int32_t acc, int32_t m, int shift, int32_t off, int32_t lo, int32_t hi) {
  int32_t v = e2m_mbqm(acc, m, shift) + off;
  v = E2M_MAX(v, lo);
  v = E2M_MIN(v, hi);
  return (int8_t)v;
}

/* 1x1 convolution. Dense: w[cout][cin]. Between regular fields (n > 0): one row of n values
 * per (output field, input field) block; circulant (C_N, table NULL): row a of a block is row 0
 * shifted by a, w[F*n + a][G*n + b] = c[F][G][(b - a) mod n]; group table (D_N):
 * w[F*n + a][G*n + b] = c[F][G][table[a*n + b]]. The input offset is folded into bias. */
typedef struct {
  int cin, cout, n, qtie;          /* qtie: requantisation parameters shared by qtie channels */
  const int8_t *w;
  const uint8_t *table;
  const int32_t *bias, *mult;
  const int8_t *shift;
  int32_t out_off, act_min, act_max;
} e2m_pw;

/* Four output channels at once: each input byte loaded once for four multiply-accumulates. */
static void e2m_dot4(const int8_t *w, int cin, const int8_t *x, int32_t *acc) {
  const int8_t *w0 = w, *w1 = w + cin, *w2 = w + 2 * cin, *w3 = w + 3 * cin;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  int i;
  for (i = 0; i < cin; ++i) {
    const int32_t xi = x[i];
    a0 += (int32_t)w0[i] * xi;
    a1 += (int32_t)w1[i] * xi;
    a2 += (int32_t)w2[i] * xi;
    a3 += (int32_t)w3[i] * xi;
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* The dense rows of output field f (n rows of cin) from its stored form, into wbuf. */
static void e2m_pw_expand(const e2m_pw *p, int f, int8_t *wbuf) {
  const int n = p->n, cin = p->cin, fields_in = cin / n;
  const int8_t *c = p->w + (size_t)f * fields_in * n;
  int a, g, b;
  for (a = 0; a < n; ++a) {
    int8_t *dst = wbuf + (size_t)a * cin;
    for (g = 0; g < fields_in; ++g) {
      const int8_t *cg = c + g * n;
      if (p->table == NULL) {
        for (b = a; b < n; ++b) dst[g * n + b] = cg[b - a];
        for (b = 0; b < a; ++b) dst[g * n + b] = cg[n - a + b];
      } else {
        const uint8_t *t = p->table + (size_t)a * n;
        for (b = 0; b < n; ++b) dst[g * n + b] = cg[t[b]];
      }
    }
  }
}

/* Output channels o0 .. o0+rows-1 of one pixel, from dense rows w. */
static void e2m_pw_pixel(const e2m_pw *p, const int8_t *w, int o0, int rows, const int8_t *x, int8_t *y) {
  const int cin = p->cin;
  int32_t acc[4];
  int r = 0, j;
  for (; r + 4 <= rows; r += 4) {
    for (j = 0; j < 4; ++j) acc[j] = p->bias[(o0 + r + j) / p->qtie];
    e2m_dot4(w + (size_t)r * cin, cin, x, acc);
    for (j = 0; j < 4; ++j) {
      const int q = (o0 + r + j) / p->qtie;
      y[r + j] = e2m_requant(acc[j], p->mult[q], p->shift[q], p->out_off, p->act_min, p->act_max);
    }
  }
  for (; r < rows; ++r) {
    const int q = (o0 + r) / p->qtie;
    const int8_t *wr = w + (size_t)r * cin;
    int32_t a = p->bias[q];
    int i;
    for (i = 0; i < cin; ++i) a += (int32_t)wr[i] * x[i];
    y[r] = e2m_requant(a, p->mult[q], p->shift[q], p->out_off, p->act_min, p->act_max);
  }
}

/* A row of pixels, output field by output field (a stored field is expanded once per row). */
static void e2m_pw_row(const e2m_pw *p, const int8_t *x, int pixels, int8_t *y, int8_t *wbuf) {
  const int group = p->n ? p->n : p->cout;
  int o0, px;
  for (o0 = 0; o0 < p->cout; o0 += group) {
    const int8_t *w = p->w + (size_t)o0 * p->cin;
    if (p->n) {
      e2m_pw_expand(p, o0 / p->n, wbuf);
      w = wbuf;
    }
    for (px = 0; px < pixels; ++px)
      e2m_pw_pixel(p, w, o0, group, x + (size_t)px * p->cin, y + (size_t)px * p->cout + o0);
  }
}

/* Depthwise k x k. Dense: w[k*k][c]. Rot90 orbit (n > 0, q = n/4): per field F only the q base
 * filters w[F][tap][r]; channel F*n + j*q + r uses base r rotated j times (perm[j][tap]). */
typedef struct {
  int c, n, q, k, stride, pad, qtie;
  const int8_t *w;
  const uint8_t *perm;             /* orbit: 4 x k*k source taps */
  const int32_t *bias, *mult;
  const int8_t *shift;
  int32_t in_off, out_off, act_min, act_max;
} e2m_dw;

/* The orbit's filters as the dense [k*k][c] layout (once per block, into scratch). */
static const int8_t *e2m_dw_weights(const e2m_dw *d, int8_t *buf) {
  const int c = d->c, kk = d->k * d->k, n = d->n, q = d->q;
  int ch, tap;
  if (n == 0) return d->w;
  for (ch = 0; ch < c; ++ch) {
    const int f = ch / n, j = (ch % n) / q, r = ch % q;
    for (tap = 0; tap < kk; ++tap) buf[(size_t)tap * c + ch] = d->w[((size_t)f * kk + d->perm[j * kk + tap]) * q + r];
  }
  return buf;
}

/* rows[ky]: input row top+ky, NULL outside the grid (TFLM skips those taps); w: dense [k*k][c]. */
static void e2m_dw_row(const e2m_dw *d, const int8_t *w, const int8_t *const *rows, int width, int ow, int8_t *y,
                       int32_t *acc) {
  const int c = d->c, k = d->k;
  const int32_t off = d->in_off;
  int ox, ch, ky, kx;
  for (ox = 0; ox < ow; ++ox, y += c) {
    const int left = ox * d->stride - d->pad;
    for (ch = 0; ch < c; ++ch) acc[ch] = d->bias[E2M_QI(ch, d->qtie, d->n)];
    for (ky = 0; ky < k; ++ky) {
      if (rows[ky] == NULL) continue;
      for (kx = 0; kx < k; ++kx) {
        const int ix = left + kx;
        const int8_t *x, *wt;
        if (ix < 0 || ix >= width) continue;
        x = rows[ky] + (size_t)ix * c;
        wt = w + (size_t)(ky * k + kx) * c;
        for (ch = 0; ch < c; ++ch) acc[ch] += (int32_t)wt[ch] * ((int32_t)x[ch] + off);
      }
    }
    for (ch = 0; ch < c; ++ch) {
      const int qi = E2M_QI(ch, d->qtie, d->n);
      y[ch] = e2m_requant(acc[ch], d->mult[qi], d->shift[qi], d->out_off, d->act_min, d->act_max);
    }
  }
}

/* MUL by a constant (H, W) mask broadcast over channels (MulElementwise arithmetic). */
typedef struct {
  const int8_t *mask;
  int32_t in_off, mask_off, out_off, mult, act_min, act_max;
  int shift;
} e2m_mask;

static int8_t e2m_masked(const e2m_mask *m, int8_t x, int8_t mv) {
  const int32_t prod = ((int32_t)x + m->in_off) * ((int32_t)mv + m->mask_off);
  return e2m_requant(prod, m->mult, m->shift, m->out_off, m->act_min, m->act_max);
}

/* The stem: k x k convolution of the masked image, one output row at a time. Dense:
 * w[cout][k*k][cin]; orbit (n > 0): w[cout/n*q][k*k][cin], channel F*n + j*q + r = base
 * F*q + r rotated j times. */
typedef struct {
  int h, w, cin, cout, ow, k, stride, pad, n, q, qtie;
  const int8_t *w8;
  const uint8_t *perm;
  const int32_t *bias, *mult;
  const int8_t *shift;
  int32_t in_off, out_off, act_min, act_max;
  const e2m_mask *mask;
} e2m_stem;

#define E2M_STEM_PATCH 256 /* k*k*cin of the stem, checked by the generator */

static void e2m_stem_row(const e2m_stem *s, const int8_t *image, int oy, int8_t *y) {
  int32_t patch[E2M_STEM_PATCH];
  const int kk = s->k * s->k, cin = s->cin;
  int ox, o, t, ci;
  for (ox = 0; ox < s->ow; ++ox, y += s->cout) {
    for (t = 0; t < kk; ++t) {
      const int iy = oy * s->stride - s->pad + t / s->k, ix = ox * s->stride - s->pad + t % s->k;
      for (ci = 0; ci < cin; ++ci) {
        /* outside the image TFLM skips the tap: a zero (offset-applied) value adds nothing */
        int32_t v = 0;
        if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) {
          const int pix = iy * s->w + ix;
          v = (int32_t)e2m_masked(s->mask, image[(size_t)pix * cin + ci], s->mask->mask[pix]) + s->in_off;
        }
        patch[t * cin + ci] = v;
      }
    }
    for (o = 0; o < s->cout; ++o) {
      const int qi = E2M_QI(o, s->qtie, s->n);
      int32_t acc = s->bias[qi];
      if (s->n == 0) {
        const int8_t *w = s->w8 + (size_t)o * kk * cin;
        for (t = 0; t < kk * cin; ++t) acc += (int32_t)w[t] * patch[t];
      } else {
        const int f = o / s->n, j = (o % s->n) / s->q, r = o % s->q;
        const int8_t *w = s->w8 + (size_t)(f * s->q + r) * kk * cin;
        for (t = 0; t < kk; ++t) {
          const int8_t *wt = w + s->perm[j * kk + t] * cin;
          for (ci = 0; ci < cin; ++ci) acc += (int32_t)wt[ci] * patch[t * cin + ci];
        }
      }
      y[o] = e2m_requant(acc, s->mult[qi], s->shift[qi], s->out_off, s->act_min, s->act_max);
    }
  }
}

/* ADD (int8, left shift 20) of the residual row and the projection row, into the latter. */
typedef struct {
  int residual_first;  /* ADD's first operand is the residual */
  int32_t in1_off, in2_off, out_off, m1, m2, mo, act_min, act_max;
  int s1, s2, so;
} e2m_add;

static void e2m_add_row(const e2m_add *a, const int8_t *res, int8_t *p, int len) {
  int i;
  for (i = 0; i < len; ++i) {
    const int32_t x1 = a->residual_first ? res[i] : p[i], x2 = a->residual_first ? p[i] : res[i];
    const int32_t v1 = e2m_rdbpot(e2m_srdhm((x1 + a->in1_off) * (1 << 20), a->m1), -a->s1);
    const int32_t v2 = e2m_rdbpot(e2m_srdhm((x2 + a->in2_off) * (1 << 20), a->m2), -a->s2);
    int32_t v = e2m_rdbpot(e2m_srdhm(v1 + v2, a->mo), -a->so) + a->out_off;
    v = E2M_MAX(v, a->act_min);
    v = E2M_MIN(v, a->act_max);
    p[i] = (int8_t)v;
  }
}

/* One inverted-residual block, streamed: for each output row, produce the input rows its
 * depthwise window needs (ring of k rows), one depthwise row, project it, add the residual.
 * Offsets are into the arena (the generator's memory plan); x_off < 0: rows come from the stem. */
typedef struct {
  int producer, h, w, cin, hidden, oh, ow, cout;
  const e2m_stem *stem;
  const e2m_pw *expand;
  const e2m_dw *dw;
  const e2m_pw *project;
  const e2m_add *add;
  long x_off, y_off, ring_off, drow_off, prow_off, acc_off, wexp_off, dwexp_off;
} e2m_block;

#define E2M_MAX_K 7

static void e2m_block_run(const e2m_block *b, const int8_t *image, uint8_t *arena) {
  const int k = b->dw->k, s = b->dw->stride, pad = b->dw->pad;
  const size_t in_row = (size_t)b->w * b->hidden, x_row = (size_t)b->w * b->cin, out_row = (size_t)b->ow * b->cout;
  const int8_t *x = b->x_off < 0 ? NULL : (const int8_t *)(arena + b->x_off);
  int8_t *y = (int8_t *)(arena + b->y_off), *ring = (int8_t *)(arena + b->ring_off);
  int8_t *drow = (int8_t *)(arena + b->drow_off), *prow = (int8_t *)(arena + b->prow_off);
  int8_t *wexp = (int8_t *)(arena + b->wexp_off);
  int32_t *acc = (int32_t *)(void *)(arena + b->acc_off);
  const int8_t *dww = e2m_dw_weights(b->dw, (int8_t *)(arena + b->dwexp_off));
  const int8_t *rows[E2M_MAX_K];
  int produced = 0, oy, ky;
  for (oy = 0; oy < b->oh; ++oy) {
    const int top = oy * s - pad, last = E2M_MIN(top + k - 1, b->h - 1);
    for (; produced <= last; ++produced) {
      int8_t *slot = ring + (size_t)(produced % k) * in_row;
      if (b->producer == E2M_STEM) e2m_stem_row(b->stem, image, produced, slot);
      else if (b->producer == E2M_EXPAND) e2m_pw_row(b->expand, x + (size_t)produced * x_row, b->w, slot, wexp);
    }
    for (ky = 0; ky < k; ++ky) {
      const int iy = top + ky;
      rows[ky] = (iy < 0 || iy >= b->h) ? NULL
                 : b->producer == E2M_FROM_X ? x + (size_t)iy * x_row : ring + (size_t)(iy % k) * in_row;
    }
    e2m_dw_row(b->dw, dww, rows, b->w, b->ow, drow, acc);
    e2m_pw_row(b->project, drow, b->ow, prow, wexp);
    if (b->add != NULL) {
      const int8_t *res = b->producer == E2M_STEM ? ring + (size_t)(oy % k) * in_row : x + (size_t)oy * x_row;
      e2m_add_row(b->add, res, prow, (int)out_row);
    }
    memcpy(y + (size_t)oy * out_row, prow, out_row);
  }
  E2M_TRACE_DATA(y, (size_t)b->oh * out_row);
}

/* Head: 1x1 conv, mask, spatial MEAN (QuantizedMeanOrSum), FULLY_CONNECTED, pixel by pixel, so
 * the head's wide tensor never exists whole. FC tied (n > 0): w[K][C/n], equal over each field. */
typedef struct {
  int pixels, c, classes, fc_n;
  const e2m_pw *conv;
  const e2m_mask *mask;
  int32_t mean_in_zp, mean_mult, mean_out_zp;
  int mean_shift;
  const int8_t *fc_w;
  const int32_t *fc_bias, *fc_mult;
  const int8_t *fc_shift;
  int32_t fc_in_off, fc_w_off, fc_out_off, fc_act_min, fc_act_max;
} e2m_head;

/* Output field by output field over every pixel: the field's rows are expanded once. */
static void e2m_head_run(const e2m_head *h, const int8_t *x, int8_t *out, uint8_t *arena, long row_off, long sum_off,
                         long wexp_off) {
  const e2m_pw *p = h->conv;
  const int c = h->c, group = p->n ? p->n : c;
  int8_t *row = (int8_t *)(arena + row_off), *wexp = (int8_t *)(arena + wexp_off);
  int32_t *sum = (int32_t *)(void *)(arena + sum_off);
  int8_t *pooled = row;
  int px, ch, kk, o0, r;
  for (ch = 0; ch < c; ++ch) sum[ch] = 0;
  for (o0 = 0; o0 < c; o0 += group) {
    const int8_t *w = p->w + (size_t)o0 * p->cin;
    if (p->n) {
      e2m_pw_expand(p, o0 / p->n, wexp);
      w = wexp;
    }
    for (px = 0; px < h->pixels; ++px) {
      e2m_pw_pixel(p, w, o0, group, x + (size_t)px * p->cin, row);
      for (r = 0; r < group; ++r) sum[o0 + r] += e2m_masked(h->mask, row[r], h->mask->mask[px]);
    }
  }
  for (ch = 0; ch < c; ++ch) {
    int32_t v = e2m_mbqm(sum[ch] - h->mean_in_zp * h->pixels, h->mean_mult, h->mean_shift) + h->mean_out_zp;
    pooled[ch] = (int8_t)E2M_MIN(E2M_MAX(v, -128), 127);
  }
  E2M_TRACE_DATA(pooled, (size_t)c);
  for (kk = 0; kk < h->classes; ++kk) {
    int32_t acc = 0;
    if (h->fc_n == 0) {
      const int8_t *w = h->fc_w + (size_t)kk * c;
      for (ch = 0; ch < c; ++ch) acc += ((int32_t)w[ch] + h->fc_w_off) * ((int32_t)pooled[ch] + h->fc_in_off);
    } else {
      const int n = h->fc_n;
      const int8_t *w = h->fc_w + (size_t)kk * (c / n);
      int f, j;
      for (f = 0; f < c / n; ++f) {
        int32_t field = 0;
        for (j = 0; j < n; ++j) field += (int32_t)pooled[f * n + j] + h->fc_in_off;
        acc += ((int32_t)w[f] + h->fc_w_off) * field;
      }
    }
    acc += h->fc_bias[kk];
    out[kk] = e2m_requant(acc, h->fc_mult[kk], h->fc_shift[kk], h->fc_out_off, h->fc_act_min, h->fc_act_max);
  }
}
