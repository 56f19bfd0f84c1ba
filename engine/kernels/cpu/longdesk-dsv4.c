// Longdesk's CPU kernels for DeepSeek-V4: Op A (fused lightning indexer + causal bound +
// streaming top-k) and Op B (sparse attention by gather). See engine/kernels/README.md for the
// op contracts. Every kernel has a plain reference branch (params->use_ref) that the op tests in
// tests/kernels compare against; the fast branch vectorises through ggml's own SIMD mappings
// (AVX2, AVX-512, NEON) and falls back to plain loops elsewhere.

#include "longdesk-dsv4.h"

#include "ggml-cpu-impl.h"
#include "simd-mappings.h"
#include "ggml-cpu.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// shared helpers

#define LD_TB 8   // Op A: tokens per block (each key chunk is converted once per block)
#define LD_KC 64  // Op A: keys per chunk; Op B: column padding of the gathered rows

#if defined(GGML_SIMD) && defined(__AVX512F__) && GGML_F32_EPR == 16
#define LD_SIMD 1
#define LD_HB 4
#define LD_RELU(x) _mm512_max_ps((x), _mm512_setzero_ps())
#elif defined(GGML_SIMD) && defined(__AVX__) && !defined(__AVX512F__) && GGML_F32_EPR == 8
#define LD_SIMD 1
#define LD_HB 2
#define LD_RELU(x) _mm256_max_ps((x), _mm256_setzero_ps())
#elif defined(GGML_SIMD) && defined(__ARM_NEON) && !defined(__ARM_FEATURE_SVE) && GGML_F32_EPR == 4
#define LD_SIMD 1
#define LD_HB 4
#define LD_RELU(x) vmaxq_f32((x), vdupq_n_f32(0.0f))
#else
#define LD_SIMD 0
#define LD_HB 1
#endif

#define LD_NV 4  // vectors per register tile row

// Op B: the gathered rows are kept transposed in column panels of LD_GW rows, each panel
// [D x LD_GW] contiguous, so the logits loop streams one panel for all heads
#if LD_SIMD
#define LD_GW (LD_NV*GGML_F32_EPR)
#else
#define LD_GW 16
#endif

static inline int64_t ld_pad(int64_t n, int64_t to) { return (n + to - 1)/to*to; }

// one row of a K tensor (any type with to_float) to F32
static void ld_row_to_f32(const struct ggml_tensor * t, const char * row, float * out, int64_t n) {
    switch (t->type) {
        case GGML_TYPE_F32: memcpy(out, row, n*sizeof(float)); break;
        case GGML_TYPE_F16: ggml_cpu_fp16_to_fp32((const ggml_fp16_t *) row, out, n); break;
        default: ggml_get_type_traits(t->type)->to_float(row, out, n); break;
    }
}

typedef struct { float v; int32_t i; } ld_cand;

static inline void ld_swap(ld_cand * a, ld_cand * b) { ld_cand t = *a; *a = *b; *b = t; }

// partial selection: afterwards c[0..k) hold the k largest values (unordered)
static void ld_select_top(ld_cand * c, int64_t n, int64_t k) {
    if (k <= 0 || n <= k) {
        return;
    }
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        const int64_t mid = lo + (hi - lo)/2;
        // median of three to c[hi] as pivot
        if (c[mid].v > c[lo].v) ld_swap(&c[mid], &c[lo]);
        if (c[hi].v > c[lo].v)  ld_swap(&c[hi], &c[lo]);
        if (c[mid].v > c[hi].v) ld_swap(&c[mid], &c[hi]);
        const float p = c[hi].v;
        int64_t st = lo;
        for (int64_t i = lo; i < hi; ++i) {
            if (c[i].v > p) {
                ld_swap(&c[i], &c[st]);
                st++;
            }
        }
        ld_swap(&c[st], &c[hi]);
        // c[lo..st) > p, c[st] == p
        if (st == k || st == k - 1) {
            return;
        }
        if (st > k) {
            hi = st - 1;
        } else {
            lo = st + 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Op A: fused lightning indexer + causal bound + streaming top-k
//
// src[0] q F32 [D, H, T, S]; src[1] k F16|Q8_0|F32 [D, 1, N, S]; src[2] w F32 [H, T, 1, S];
// src[3] n_vis I32 [T, S]; dst I32 [top_k, T, 1, S]

static int64_t ld_topk_cap(int64_t top_k) { return 2*top_k + LD_KC; }

#define LD_MIN_SPLIT_KEYS 1024  // keys per thread at least when one token's keys are split

// Few tokens (decode) leave threads idle: split each token's keys into ranges, one thread each,
// and merge the ranges' top-k lists after a barrier. 1 = no split.
static int64_t ld_indexer_splits(const struct ggml_tensor * dst, int n_threads) {
    const int64_t T = dst->src[0]->ne[2], S = dst->src[0]->ne[3], N = dst->src[1]->ne[2];
    const int64_t items = (T + LD_TB - 1)/LD_TB*S;
    if (items >= n_threads) {
        return 1;
    }
    int64_t n = n_threads/items;
    const int64_t by_keys = N/LD_MIN_SPLIT_KEYS;
    n = n < by_keys ? n : by_keys;
    return n > 1 ? n : 1;
}

static size_t ld_indexer_thread_bytes(const struct ggml_tensor * dst, int64_t n_split) {
    const int64_t D = dst->src[0]->ne[0];
    const int64_t top_k = dst->ne[0];
    const int64_t cap = ld_topk_cap(top_k);
    const int64_t merge = n_split > 1 ? n_split*top_k : 0;
    return sizeof(float)*(D*LD_KC + D + LD_TB*LD_KC) +
           sizeof(ld_cand)*(LD_TB*cap > merge ? LD_TB*cap : merge) + 64;
}

size_t longdesk_dsv4_indexer_topk_work_size(const struct ggml_tensor * dst, int n_threads) {
    const int64_t n_split = ld_indexer_splits(dst, n_threads);
    size_t bytes = ld_indexer_thread_bytes(dst, n_split)*(size_t) n_threads;
    if (n_split > 1) {
        // each (token block, key range) leaves its per-token top-k list (+ a count) for the merge
        const int64_t T = dst->src[0]->ne[2], S = dst->src[0]->ne[3];
        const int64_t items = (T + LD_TB - 1)/LD_TB*S*n_split;
        bytes += (size_t) items*LD_TB*(sizeof(ld_cand)*(size_t) dst->ne[0] + sizeof(int64_t)) + 64;
    }
    return bytes;
}

// scores of one token against one transposed key chunk Kt [D x LD_KC]
static void ld_score_chunk(const float * Kt, int64_t D, const char * q_t, size_t nbq1,
                           const char * w_t, size_t nbw0, int64_t H, float * sc) {
#if LD_SIMD
    if (H % LD_HB == 0) {
        const int kpp = LD_NV*GGML_F32_EPR;
        for (int kb = 0; kb < LD_KC; kb += kpp) {
            GGML_F32_VEC tot[LD_NV];
            for (int i = 0; i < LD_NV; ++i) tot[i] = GGML_F32_VEC_ZERO;
            for (int64_t h = 0; h < H; h += LD_HB) {
                GGML_F32_VEC acc[LD_HB][LD_NV];
                const float * qh[LD_HB];
                for (int hh = 0; hh < LD_HB; ++hh) {
                    qh[hh] = (const float *) (q_t + (h + hh)*nbq1);
                    for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_ZERO;
                }
                for (int64_t d = 0; d < D; ++d) {
                    GGML_F32_VEC kv[LD_NV];
                    for (int i = 0; i < LD_NV; ++i) kv[i] = GGML_F32_VEC_LOAD(Kt + d*LD_KC + kb + i*GGML_F32_EPR);
                    for (int hh = 0; hh < LD_HB; ++hh) {
                        const GGML_F32_VEC qv = GGML_F32_VEC_SET1(qh[hh][d]);
                        for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_FMA(acc[hh][i], kv[i], qv);
                    }
                }
                for (int hh = 0; hh < LD_HB; ++hh) {
                    const GGML_F32_VEC wv = GGML_F32_VEC_SET1(*(const float *) (w_t + (h + hh)*nbw0));
                    for (int i = 0; i < LD_NV; ++i) tot[i] = GGML_F32_VEC_FMA(tot[i], LD_RELU(acc[hh][i]), wv);
                }
            }
            for (int i = 0; i < LD_NV; ++i) GGML_F32_VEC_STORE(sc + kb + i*GGML_F32_EPR, tot[i]);
        }
        return;
    }
#endif
    for (int c = 0; c < LD_KC; ++c) sc[c] = 0.0f;
    float acc[LD_KC];
    for (int64_t h = 0; h < H; ++h) {
        const float * qh = (const float *) (q_t + h*nbq1);
        for (int c = 0; c < LD_KC; ++c) acc[c] = 0.0f;
        for (int64_t d = 0; d < D; ++d) {
            const float qd = qh[d];
            const float * kr = Kt + d*LD_KC;
            for (int c = 0; c < LD_KC; ++c) acc[c] += qd*kr[c];
        }
        const float wh = *(const float *) (w_t + h*nbw0);
        for (int c = 0; c < LD_KC; ++c) sc[c] += wh*(acc[c] > 0.0f ? acc[c] : 0.0f);
    }
}

static void ld_indexer_topk_ref(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * k = dst->src[1];
    const struct ggml_tensor * w = dst->src[2];
    const struct ggml_tensor * nv = dst->src[3];
    const int64_t D = q->ne[0], H = q->ne[1], T = q->ne[2], S = q->ne[3], N = k->ne[2];
    const int64_t top_k = dst->ne[0];

    float * krow = (float *) malloc(sizeof(float)*D);
    ld_cand * all = (ld_cand *) malloc(sizeof(ld_cand)*(N > 0 ? N : 1));
    for (int64_t r = params->ith; r < T*S; r += params->nth) {
        const int64_t t = r % T, s = r / T;
        int64_t n_vis = *(const int32_t *) ((const char *) nv->data + t*nv->nb[0] + s*nv->nb[1]);
        n_vis = n_vis < 0 ? 0 : (n_vis > N ? N : n_vis);
        for (int64_t j = 0; j < n_vis; ++j) {
            ld_row_to_f32(k, (const char *) k->data + j*k->nb[2] + s*k->nb[3], krow, D);
            double score = 0.0;
            for (int64_t h = 0; h < H; ++h) {
                const float * qh = (const float *) ((const char *) q->data + h*q->nb[1] + t*q->nb[2] + s*q->nb[3]);
                double dot = 0.0;
                for (int64_t d = 0; d < D; ++d) dot += (double) qh[d]*(double) krow[d];
                const float wh = *(const float *) ((const char *) w->data + h*w->nb[0] + t*w->nb[1] + s*w->nb[3]);
                score += dot > 0.0 ? (double) wh*dot : 0.0;
            }
            all[j].v = (float) score;
            all[j].i = (int32_t) j;
        }
        // plain selection: repeated max scan (slow, obviously right)
        int32_t * out = (int32_t *) ((char *) dst->data + t*dst->nb[1] + s*dst->nb[3]);
        for (int64_t i = 0; i < top_k; ++i) {
            if (i >= n_vis) {
                out[i] = -1;
                continue;
            }
            int64_t best = i;
            for (int64_t j = i + 1; j < n_vis; ++j) {
                if (all[j].v > all[best].v) best = j;
            }
            ld_swap(&all[i], &all[best]);
            out[i] = all[i].i;
        }
    }
    free(all);
    free(krow);
}

// scores the keys [j_lo, j_hi) of one token block into the running candidate lists cand/cnt
static void ld_indexer_block(const struct ggml_tensor * dst, int64_t s, int64_t t0, int64_t tn,
                             const int64_t * vis, int64_t j_lo, int64_t j_hi, char * wbase,
                             ld_cand * cand, int64_t * cnt) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * k = dst->src[1];
    const struct ggml_tensor * w = dst->src[2];
    const int64_t D = q->ne[0], H = q->ne[1];
    const int64_t top_k = dst->ne[0];
    const int64_t cap = ld_topk_cap(top_k);
    float * Kt = (float *) wbase;
    float * krow = Kt + D*LD_KC;
    float * sc = krow + D;

    float thr[LD_TB];
    for (int64_t i = 0; i < tn; ++i) {
        cnt[i] = 0;
        thr[i] = -INFINITY;
    }
    for (int64_t j0 = j_lo; j0 < j_hi; j0 += LD_KC) {
        const int64_t jn = j_hi - j0 < LD_KC ? j_hi - j0 : LD_KC;
        // convert + transpose the chunk once for the whole token block
        for (int64_t c = 0; c < jn; ++c) {
            ld_row_to_f32(k, (const char *) k->data + (j0 + c)*k->nb[2] + s*k->nb[3], krow, D);
            for (int64_t d = 0; d < D; ++d) Kt[d*LD_KC + c] = krow[d];
        }
        for (int64_t c = jn; c < LD_KC; ++c) {
            for (int64_t d = 0; d < D; ++d) Kt[d*LD_KC + c] = 0.0f;
        }
        for (int64_t i = 0; i < tn; ++i) {
            if (vis[i] <= j0) {
                continue;  // causal bound: the whole chunk is past this token
            }
            const int64_t t = t0 + i;
            float * sci = sc + i*LD_KC;
            ld_score_chunk(Kt, D, (const char *) q->data + t*q->nb[2] + s*q->nb[3], q->nb[1],
                           (const char *) w->data + t*w->nb[1] + s*w->nb[3], w->nb[0], H, sci);
            const int64_t lim = vis[i] - j0 < jn ? vis[i] - j0 : jn;
            ld_cand * ci = cand + i*cap;
            for (int64_t c = 0; c < lim; ++c) {
                if (cnt[i] < top_k || sci[c] > thr[i]) {
                    ci[cnt[i]].v = sci[c];
                    ci[cnt[i]].i = (int32_t) (j0 + c);
                    cnt[i]++;
                }
            }
            if (cnt[i] > cap - LD_KC) {
                // running threshold: keep the top_k so far, the k-th value becomes the bar
                ld_select_top(ci, cnt[i], top_k);
                cnt[i] = top_k;
                float m = INFINITY;
                for (int64_t e = 0; e < top_k; ++e) m = ci[e].v < m ? ci[e].v : m;
                thr[i] = m;
            }
        }
    }
    for (int64_t i = 0; i < tn; ++i) {
        ld_select_top(cand + i*cap, cnt[i], top_k);
        cnt[i] = cnt[i] < top_k ? cnt[i] : top_k;
    }
}

static void ld_write_topk(struct ggml_tensor * dst, int64_t t, int64_t s, const ld_cand * c, int64_t n) {
    const int64_t top_k = dst->ne[0];
    int32_t * out = (int32_t *) ((char *) dst->data + t*dst->nb[1] + s*dst->nb[3]);
    for (int64_t e = 0; e < n; ++e) out[e] = c[e].i;
    for (int64_t e = n; e < top_k; ++e) out[e] = -1;
}

void longdesk_dsv4_indexer_topk_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * k = dst->src[1];
    const struct ggml_tensor * w = dst->src[2];
    const struct ggml_tensor * nv = dst->src[3];

    GGML_ASSERT(q->type == GGML_TYPE_F32 && w->type == GGML_TYPE_F32 && nv->type == GGML_TYPE_I32);
    GGML_ASSERT(dst->type == GGML_TYPE_I32);
    GGML_ASSERT(q->nb[0] == sizeof(float) && w->nb[0] == sizeof(float));

    if (params->use_ref) {
        ld_indexer_topk_ref(params, dst);
        return;
    }

    const int64_t T = q->ne[2], S = q->ne[3], N = k->ne[2];
    const int64_t top_k = dst->ne[0];
    const int64_t cap = ld_topk_cap(top_k);
    const int64_t n_split = ld_indexer_splits(dst, params->nth);
    const size_t thread_bytes = ld_indexer_thread_bytes(dst, n_split);
    const int64_t D = q->ne[0];

    char * wbase = (char *) params->wdata + thread_bytes*params->ith;
    ld_cand * cand = (ld_cand *) ((float *) wbase + D*LD_KC + D + LD_TB*LD_KC);
    // after the threads' scratch: the ranges' lists for the merge (split mode only)
    char * parts = (char *) params->wdata + thread_bytes*params->nth;

    const int64_t nblk = (T + LD_TB - 1)/LD_TB;
    const int64_t n_items = nblk*S*n_split;
    for (int64_t item = params->ith; item < n_items; item += params->nth) {
        const int64_t p = item % n_split;
        const int64_t b = item / n_split;
        const int64_t s = b / nblk;
        const int64_t t0 = (b % nblk)*LD_TB;
        const int64_t tn = T - t0 < LD_TB ? T - t0 : LD_TB;

        int64_t vis[LD_TB], cnt[LD_TB];
        int64_t max_vis = 0;
        for (int64_t i = 0; i < tn; ++i) {
            int64_t v = *(const int32_t *) ((const char *) nv->data + (t0 + i)*nv->nb[0] + s*nv->nb[1]);
            v = v < 0 ? 0 : (v > N ? N : v);
            vis[i] = v;
            max_vis = v > max_vis ? v : max_vis;
        }
        // key range of this item, whole chunks
        const int64_t n_chunks = (max_vis + LD_KC - 1)/LD_KC;
        const int64_t j_lo = n_chunks*p/n_split*LD_KC;
        int64_t j_hi = n_chunks*(p + 1)/n_split*LD_KC;
        j_hi = j_hi < max_vis ? j_hi : max_vis;

        ld_indexer_block(dst, s, t0, tn, vis, j_lo, j_hi, wbase, cand, cnt);

        for (int64_t i = 0; i < tn; ++i) {
            if (n_split == 1) {
                ld_write_topk(dst, t0 + i, s, cand + i*cap, cnt[i]);
                continue;
            }
            char * slot = parts + (size_t) (item*LD_TB + i)*(sizeof(ld_cand)*(size_t) top_k + sizeof(int64_t));
            memcpy(slot, &cnt[i], sizeof(int64_t));
            memcpy(slot + sizeof(int64_t), cand + i*cap, sizeof(ld_cand)*(size_t) cnt[i]);
        }
    }
    if (n_split == 1) {
        return;
    }

    ggml_barrier(params->threadpool);

    // merge: one token at a time, the ranges' lists side by side, then the same selection
    for (int64_t r = params->ith; r < T*S; r += params->nth) {
        const int64_t t = r % T, s = r / T;
        const int64_t b = s*nblk + t/LD_TB, i = t % LD_TB;
        int64_t n = 0;
        for (int64_t p = 0; p < n_split; ++p) {
            const char * slot = parts + (size_t) ((b*n_split + p)*LD_TB + i)*(sizeof(ld_cand)*(size_t) top_k + sizeof(int64_t));
            int64_t c;
            memcpy(&c, slot, sizeof(int64_t));
            memcpy(cand + n, slot + sizeof(int64_t), sizeof(ld_cand)*(size_t) c);
            n += c;
        }
        ld_select_top(cand, n, top_k);
        ld_write_topk(dst, t, s, cand, n < top_k ? n : top_k);
    }
}

// ---------------------------------------------------------------------------------------------
// Op B: sparse attention by gather
//
// src[0] q F32 [D, H, T, S]; src[1] raw_k [D, 1, n_raw, S]; src[2] raw_mask F16|F32
// [n_raw, T, 1, 1|S]; src[3] comp_k [D, 1, N, S]; src[4] n_vis I32 [T, S];
// op_params: [0] scale (f32), [1] src slot of idx I32 [k, T, 1, S] or -1, [2] src slot of sinks
// F32 [H] or -1. dst F32 [D, H, T, S] contiguous.

static int64_t ld_attn_max_rows(const struct ggml_tensor * dst) {
    const int32_t idx_slot = ggml_get_op_params_i32(dst, 1);
    const int64_t n_raw = dst->src[1]->ne[2];
    const int64_t N = dst->src[3]->ne[2];
    int64_t n_comp = N;
    if (idx_slot >= 0) {
        const int64_t kk = dst->src[idx_slot]->ne[0];
        n_comp = kk < N ? kk : N;
    }
    return n_raw + n_comp;
}

size_t longdesk_dsv4_sparse_attn_work_size(const struct ggml_tensor * dst, int n_threads) {
    const int64_t D = dst->src[0]->ne[0], H = dst->src[0]->ne[1];
    const int64_t nr = ld_pad(ld_attn_max_rows(dst), LD_KC);
    const size_t per_thread = sizeof(float)*(2*nr*D + H*nr + nr + D) + sizeof(int32_t)*nr + 256;
    return per_thread*(size_t) n_threads;
}

static inline float ld_mask_at(const struct ggml_tensor * m, int64_t r, int64_t t, int64_t s) {
    const char * p = (const char *) m->data + r*m->nb[0] + t*m->nb[1] + (s % m->ne[3])*m->nb[3];
    return m->type == GGML_TYPE_F16 ? GGML_CPU_FP16_TO_FP32(*(const ggml_fp16_t *) p) : *(const float *) p;
}

static void ld_sparse_attn_ref(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * rk = dst->src[1];
    const struct ggml_tensor * rm = dst->src[2];
    const struct ggml_tensor * ck = dst->src[3];
    const struct ggml_tensor * nv = dst->src[4];
    const int32_t idx_slot = ggml_get_op_params_i32(dst, 1);
    const int32_t sink_slot = ggml_get_op_params_i32(dst, 2);
    const struct ggml_tensor * idx = idx_slot >= 0 ? dst->src[idx_slot] : NULL;
    const struct ggml_tensor * sinks = sink_slot >= 0 ? dst->src[sink_slot] : NULL;
    const float scale = ggml_get_op_params_f32(dst, 0);
    const int64_t D = q->ne[0], H = q->ne[1], T = q->ne[2], S = q->ne[3];
    const int64_t n_raw = rk->ne[2], N = ck->ne[2];
    const int64_t n_all = n_raw + N;

    // dense definition: every raw row with its mask value, every compressed row masked unless selected
    float * rows = (float *) malloc(sizeof(float)*(n_all > 0 ? n_all : 1)*D);
    float * logit = (float *) malloc(sizeof(float)*(n_all > 0 ? n_all : 1));
    float * addm = (float *) malloc(sizeof(float)*(n_all > 0 ? n_all : 1));
    double * acc = (double *) malloc(sizeof(double)*D);

    for (int64_t r = params->ith; r < T*S; r += params->nth) {
        const int64_t t = r % T, s = r / T;
        int64_t n_vis = *(const int32_t *) ((const char *) nv->data + t*nv->nb[0] + s*nv->nb[1]);
        n_vis = n_vis < 0 ? 0 : (n_vis > N ? N : n_vis);
        for (int64_t j = 0; j < n_raw; ++j) {
            ld_row_to_f32(rk, (const char *) rk->data + j*rk->nb[2] + s*rk->nb[3], rows + j*D, D);
            addm[j] = ld_mask_at(rm, j, t, s);
        }
        for (int64_t j = 0; j < N; ++j) {
            ld_row_to_f32(ck, (const char *) ck->data + j*ck->nb[2] + s*ck->nb[3], rows + (n_raw + j)*D, D);
            addm[n_raw + j] = idx ? -INFINITY : (j < n_vis ? 0.0f : -INFINITY);
        }
        if (idx) {
            const int32_t * ir = (const int32_t *) ((const char *) idx->data + t*idx->nb[1] + s*idx->nb[3]);
            for (int64_t e = 0; e < idx->ne[0]; ++e) {
                if (ir[e] >= 0 && ir[e] < n_vis) addm[n_raw + ir[e]] = 0.0f;
            }
        }
        for (int64_t h = 0; h < H; ++h) {
            const float * qh = (const float *) ((const char *) q->data + h*q->nb[1] + t*q->nb[2] + s*q->nb[3]);
            float M = sinks ? ((const float *) sinks->data)[h] : -INFINITY;
            for (int64_t j = 0; j < n_all; ++j) {
                if (addm[j] == -INFINITY) {
                    logit[j] = -INFINITY;
                    continue;
                }
                double dot = 0.0;
                for (int64_t d = 0; d < D; ++d) dot += (double) qh[d]*(double) rows[j*D + d];
                logit[j] = (float) (dot*(double) scale) + addm[j];
                M = logit[j] > M ? logit[j] : M;
            }
            double sum = sinks && M != -INFINITY ? exp((double) ((const float *) sinks->data)[h] - (double) M) : 0.0;
            for (int64_t d = 0; d < D; ++d) acc[d] = 0.0;
            for (int64_t j = 0; j < n_all; ++j) {
                if (logit[j] == -INFINITY) continue;
                const double p = exp((double) logit[j] - (double) M);
                sum += p;
                for (int64_t d = 0; d < D; ++d) acc[d] += p*(double) rows[j*D + d];
            }
            float * out = (float *) ((char *) dst->data + h*dst->nb[1] + t*dst->nb[2] + s*dst->nb[3]);
            for (int64_t d = 0; d < D; ++d) out[d] = sum > 0.0 ? (float) (acc[d]/sum) : 0.0f;
        }
    }
    free(acc);
    free(addm);
    free(logit);
    free(rows);
}

// one gathered row into both layouts: G in column panels of gw dims ([D/gw][nr][gw]; gw = D is
// plain row-major), Gt in row panels of LD_GW rows ([nr/LD_GW][D][LD_GW])
static inline void ld_put_row(const float * row, int64_t j, int64_t D, int64_t nr, int64_t gw,
                              float * G, float * Gt) {
    for (int64_t d0 = 0; d0 < D; d0 += gw) {
        memcpy(G + d0*nr + j*gw, row + d0, sizeof(float)*(size_t) gw);
    }
    float * pt = Gt + (j/LD_GW)*LD_GW*D + j % LD_GW;
    for (int64_t d = 0; d < D; ++d) {
        pt[d*LD_GW] = row[d];
    }
}

void longdesk_dsv4_sparse_attn_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * q = dst->src[0];
    const struct ggml_tensor * rk = dst->src[1];
    const struct ggml_tensor * rm = dst->src[2];
    const struct ggml_tensor * ck = dst->src[3];
    const struct ggml_tensor * nv = dst->src[4];
    const int32_t idx_slot = ggml_get_op_params_i32(dst, 1);
    const int32_t sink_slot = ggml_get_op_params_i32(dst, 2);
    const struct ggml_tensor * idx = idx_slot >= 0 ? dst->src[idx_slot] : NULL;
    const struct ggml_tensor * sinks = sink_slot >= 0 ? dst->src[sink_slot] : NULL;

    GGML_ASSERT(q->type == GGML_TYPE_F32 && q->nb[0] == sizeof(float));
    GGML_ASSERT(dst->type == GGML_TYPE_F32 && ggml_is_contiguous(dst));
    GGML_ASSERT(rm->type == GGML_TYPE_F16 || rm->type == GGML_TYPE_F32);

    if (params->use_ref) {
        ld_sparse_attn_ref(params, dst);
        return;
    }

    const float scale = ggml_get_op_params_f32(dst, 0);
    const int64_t D = q->ne[0], H = q->ne[1], T = q->ne[2], S = q->ne[3];
    const int64_t n_raw = rk->ne[2], N = ck->ne[2];
    const int64_t nr = ld_pad(ld_attn_max_rows(dst), LD_KC);

    char * wbase = (char *) params->wdata + longdesk_dsv4_sparse_attn_work_size(dst, 1)*params->ith;
    // dims per column panel of G: the output loop reads one panel for every head
    const int64_t gw = D % LD_GW == 0 ? LD_GW : D;
    float * G = (float *) wbase;        // the gathered rows, [D/gw][nr][gw]
    float * Gt = G + nr*D;              // the same, transposed, [nr/LD_GW][D][LD_GW]
    float * P = Gt + nr*D;              // [H x nr] logits then weights
    float * madd = P + H*nr;            // [nr] mask value per gathered row
    float * row = madd + nr;            // [D] one row converted to F32
    int32_t * rows = (int32_t *) (row + D);  // row ids (raw: r, comp: n_raw + j) - kept for debugging

    const int64_t n_tok = T*S;
    const int64_t n_grp = n_tok >= params->nth ? 1 : params->nth;  // decode: split the heads
    int64_t hpg = (H + n_grp - 1)/n_grp;
    hpg = ld_pad(hpg, LD_HB);

    for (int64_t item = params->ith; item < n_tok*n_grp; item += params->nth) {
        const int64_t tok = item / n_grp, g = item % n_grp;
        const int64_t t = tok % T, s = tok / T;
        const int64_t h0 = g*hpg;
        const int64_t h1 = h0 + hpg < H ? h0 + hpg : H;
        if (h0 >= h1) {
            continue;
        }
        int64_t n_vis = *(const int32_t *) ((const char *) nv->data + t*nv->nb[0] + s*nv->nb[1]);
        n_vis = n_vis < 0 ? 0 : (n_vis > N ? N : n_vis);

        // gather: finite raw rows, then the selected (or all visible) compressed rows
        int64_t n = 0;
        for (int64_t r = 0; r < n_raw; ++r) {
            const float m = ld_mask_at(rm, r, t, s);
            if (m == -INFINITY) continue;
            ld_row_to_f32(rk, (const char *) rk->data + r*rk->nb[2] + s*rk->nb[3], row, D);
            ld_put_row(row, n, D, nr, gw, G, Gt);
            madd[n] = m;
            rows[n++] = (int32_t) r;
        }
        if (idx) {
            const int32_t * ir = (const int32_t *) ((const char *) idx->data + t*idx->nb[1] + s*idx->nb[3]);
            for (int64_t e = 0; e < idx->ne[0]; ++e) {
                const int32_t j = ir[e];
                if (j < 0 || j >= n_vis) continue;
                ld_row_to_f32(ck, (const char *) ck->data + j*ck->nb[2] + s*ck->nb[3], row, D);
                ld_put_row(row, n, D, nr, gw, G, Gt);
                madd[n] = 0.0f;
                rows[n++] = (int32_t) (n_raw + j);
            }
        } else {
            for (int64_t j = 0; j < n_vis; ++j) {
                ld_row_to_f32(ck, (const char *) ck->data + j*ck->nb[2] + s*ck->nb[3], row, D);
                ld_put_row(row, n, D, nr, gw, G, Gt);
                madd[n] = 0.0f;
                rows[n++] = (int32_t) (n_raw + j);
            }
        }
        const int64_t np = ld_pad(n > 0 ? n : 1, LD_KC);
        for (int64_t j = n; j < np; ++j) {  // padding columns of the last panels score 0
            float * pt = Gt + (j/LD_GW)*LD_GW*D + j % LD_GW;
            for (int64_t d = 0; d < D; ++d) pt[d*LD_GW] = 0.0f;
        }

        // logits P[h][j] = scale * q_h . row_j + mask_j
        const char * q_t = (const char *) q->data + t*q->nb[2] + s*q->nb[3];
        int64_t h = h0;
#if LD_SIMD
        {
            const int kpp = LD_NV*GGML_F32_EPR;
            // panel outer, heads inner: one panel of Gt (D x kpp floats, contiguous) stays in
            // cache while every head passes over it
            const int64_t hb_end = h0 + (h1 - h0)/LD_HB*LD_HB;
            for (int64_t kb = 0; kb < np; kb += kpp) {
                for (h = h0; h < hb_end; h += LD_HB) {
                    const float * qh[LD_HB];
                    for (int hh = 0; hh < LD_HB; ++hh) qh[hh] = (const float *) (q_t + (h + hh)*q->nb[1]);
                    GGML_F32_VEC acc[LD_HB][LD_NV];
                    for (int hh = 0; hh < LD_HB; ++hh)
                        for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_ZERO;
                    for (int64_t d = 0; d < D; ++d) {
                        GGML_F32_VEC kv[LD_NV];
                        for (int i = 0; i < LD_NV; ++i) kv[i] = GGML_F32_VEC_LOAD(Gt + kb*D + d*kpp + i*GGML_F32_EPR);
                        for (int hh = 0; hh < LD_HB; ++hh) {
                            const GGML_F32_VEC qv = GGML_F32_VEC_SET1(qh[hh][d]);
                            for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_FMA(acc[hh][i], kv[i], qv);
                        }
                    }
                    for (int hh = 0; hh < LD_HB; ++hh)
                        for (int i = 0; i < LD_NV; ++i) GGML_F32_VEC_STORE(P + (h + hh)*nr + kb + i*GGML_F32_EPR, acc[hh][i]);
                }
            }
            h = hb_end;
        }
#endif
        for (; h < h1; ++h) {
            const float * qh = (const float *) (q_t + h*q->nb[1]);
            float * ph = P + h*nr;
            for (int64_t j = 0; j < np; ++j) ph[j] = 0.0f;
            for (int64_t j0 = 0; j0 < np; j0 += LD_GW) {
                const float * panel = Gt + j0*D;
                for (int64_t d = 0; d < D; ++d) {
                    const float qd = qh[d];
                    for (int64_t c = 0; c < LD_GW; ++c) ph[j0 + c] += qd*panel[d*LD_GW + c];
                }
            }
        }

        // softmax with the sink, per head; P becomes the (unnormalised) weights
        float * out_t = (float *) ((char *) dst->data + t*dst->nb[2] + s*dst->nb[3]);
        for (h = h0; h < h1; ++h) {
            float * ph = P + h*nr;
            float M = sinks ? ((const float *) sinks->data)[h] : -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
                ph[j] = ph[j]*scale + madd[j];
                M = ph[j] > M ? ph[j] : M;
            }
            double sum = 0.0;
            if (M != -INFINITY) {
                for (int64_t j = 0; j < n; ++j) {
                    ph[j] = expf(ph[j] - M);
                    sum += (double) ph[j];
                }
                if (sinks) sum += (double) expf(((const float *) sinks->data)[h] - M);
            }
            const float is = sum > 0.0 ? (float) (1.0/sum) : 0.0f;
            for (int64_t j = 0; j < n; ++j) ph[j] *= is;
            if (sum == 0.0) {
                memset(out_t + h*D, 0, D*sizeof(float));
            }
        }

        // out_h = sum_j p_hj row_j  (V = K)
        h = h0;
#if LD_SIMD
        if (D % (LD_NV*GGML_F32_EPR) == 0) {
            const int dpp = LD_NV*GGML_F32_EPR;
            // column block of the rows outer, heads inner: G's slice (n x dpp floats) stays in cache
            const int64_t hb_end = h0 + (h1 - h0)/LD_HB*LD_HB;
            for (int64_t db = 0; db < D; db += dpp) {
                for (h = h0; h < hb_end; h += LD_HB) {
                    GGML_F32_VEC acc[LD_HB][LD_NV];
                    for (int hh = 0; hh < LD_HB; ++hh)
                        for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_ZERO;
                    for (int64_t j = 0; j < n; ++j) {
                        GGML_F32_VEC gv[LD_NV];
                        for (int i = 0; i < LD_NV; ++i) gv[i] = GGML_F32_VEC_LOAD(G + db*nr + j*dpp + i*GGML_F32_EPR);
                        for (int hh = 0; hh < LD_HB; ++hh) {
                            const GGML_F32_VEC pv = GGML_F32_VEC_SET1(P[(h + hh)*nr + j]);
                            for (int i = 0; i < LD_NV; ++i) acc[hh][i] = GGML_F32_VEC_FMA(acc[hh][i], gv[i], pv);
                        }
                    }
                    for (int hh = 0; hh < LD_HB; ++hh)
                        for (int i = 0; i < LD_NV; ++i) GGML_F32_VEC_STORE(out_t + (h + hh)*D + db + i*GGML_F32_EPR, acc[hh][i]);
                }
            }
            h = hb_end;
        }
#endif
        for (; h < h1; ++h) {
            float * o = out_t + h*D;
            const float * ph = P + h*nr;
            for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
                const float p = ph[j];
                for (int64_t d0 = 0; d0 < D; d0 += gw) {
                    const float * gr = G + d0*nr + j*gw;
                    for (int64_t d = 0; d < gw; ++d) o[d0 + d] += p*gr[d];
                }
            }
        }
    }
}
