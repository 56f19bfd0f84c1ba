// Longdesk's CPU kernels for DeepSeek-V4's MoE routing and hyper-connection gates (Op C):
//
//   GGML_OP_DSV4_MOE_TOPK     the experts of each token: top n_used of sqrt(softplus(l)) + bias
//   GGML_OP_DSV4_MOE_COMBINE  the routing weights (sqrt-softplus of the chosen logits, normalised,
//                             scaled) applied to the experts' outputs and summed, in one pass
//   GGML_OP_DSV4_HC_GATES     the pre (sigmoid + eps) and post (2 sigmoid) gates of a
//                             hyper-connection block from its mixes, scale and base
//
// Together they replace about 35 graph nodes per layer of upstream's decomposition (softplus,
// sqrt, bias add, argsort, get_rows, sum_rows, clamp, div, scale, the weighted multiply, the
// per-expert views and adds, and the views, muls, adds, sigmoids and scales of the gates); each
// CPU node is a thread barrier. Contracts in engine/kernels/README.md. Each op keeps a plain
// reference branch (params->use_ref) that tests/kernels compares against.

#include "longdesk-dsv4.h"

#include "ggml-cpu-impl.h"
#include "ggml-impl.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LD_ROUTE_MAX_USED 32  // experts per token the fused router supports
#define LD_COMBINE_CHUNK 512  // embedding columns per work item when tokens are few

static inline float ld_sqrt_softplus(float x) {
    return sqrtf(ggml_compute_softplus_f32(x));
}

static inline const float * ld_row_f32(const struct ggml_tensor * t, int64_t i1, int64_t i2) {
    return (const float *) ((const char *) t->data + i1*t->nb[1] + i2*t->nb[2]);
}

// ---------------------------------------------------------------------------------------------
// GGML_OP_DSV4_MOE_TOPK

typedef struct { float v; int32_t i; } ld_route_cand;

static int ld_route_cmp_desc(const void * a, const void * b) {
    const ld_route_cand * x = (const ld_route_cand *) a;
    const ld_route_cand * y = (const ld_route_cand *) b;
    if (x->v != y->v) {
        return x->v > y->v ? -1 : 1;
    }
    return x->i - y->i;
}

size_t longdesk_dsv4_moe_topk_work_size(const struct ggml_tensor * dst, int n_threads) {
    const int64_t n_expert = dst->src[0]->ne[0];
    return sizeof(ld_route_cand)*(size_t) n_expert*(size_t) n_threads;  // the reference sort's buffer
}

void longdesk_dsv4_moe_topk_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * logits = dst->src[0];
    const struct ggml_tensor * bias   = dst->src[1];

    const int64_t n_expert = logits->ne[0];
    const int64_t n_used   = dst->ne[0];
    const int64_t n_tokens = logits->ne[1];
    const float * b = (const float *) bias->data;

    for (int64_t t = params->ith; t < n_tokens; t += params->nth) {
        const float * l = ld_row_f32(logits, t, 0);
        int32_t * out = (int32_t *) ((char *) dst->data + t*dst->nb[1]);

        if (params->use_ref) {
            // plain: score every expert, sort all of them, keep the first n_used
            ld_route_cand * c = (ld_route_cand *) params->wdata + params->ith*n_expert;
            for (int64_t e = 0; e < n_expert; ++e) {
                c[e].v = ld_sqrt_softplus(l[e]) + b[e];
                c[e].i = (int32_t) e;
            }
            qsort(c, (size_t) n_expert, sizeof(*c), ld_route_cmp_desc);
            for (int64_t j = 0; j < n_used; ++j) {
                out[j] = c[j].i;
            }
            continue;
        }

        // one pass with a sorted list of the n_used best so far (n_used is small: 6 in V4)
        float   best_v[LD_ROUTE_MAX_USED];
        int32_t best_i[LD_ROUTE_MAX_USED];
        int64_t n_best = 0;
        for (int64_t e = 0; e < n_expert; ++e) {
            const float v = ld_sqrt_softplus(l[e]) + b[e];
            if (n_best == n_used && !(v > best_v[n_used - 1])) {
                continue;
            }
            int64_t p = n_best < n_used ? n_best++ : n_used - 1;
            while (p > 0 && best_v[p - 1] < v) {
                best_v[p] = best_v[p - 1];
                best_i[p] = best_i[p - 1];
                --p;
            }
            best_v[p] = v;
            best_i[p] = (int32_t) e;
        }
        memcpy(out, best_i, (size_t) n_used*sizeof(int32_t));
    }
}

// ---------------------------------------------------------------------------------------------
// GGML_OP_DSV4_MOE_COMBINE

// the routing weights of token t: sqrt-softplus of the chosen logits, normalised, scaled
static void ld_route_weights(const struct ggml_tensor * dst, int64_t t, float * w) {
    const struct ggml_tensor * logits = dst->src[1];
    const struct ggml_tensor * ids    = dst->src[2];
    const int64_t n_used   = ids->ne[0];
    const int64_t n_expert = logits->ne[0];
    const int32_t norm      = ggml_get_op_params_i32(dst, 0);
    const float   clamp_min = ggml_get_op_params_f32(dst, 1);
    const float   scale     = ggml_get_op_params_f32(dst, 2);

    const float   * l  = ld_row_f32(logits, t, 0);
    const int32_t * id = (const int32_t *) ((const char *) ids->data + t*ids->nb[1]);
    float sum = 0.0f;
    for (int64_t i = 0; i < n_used; ++i) {
        GGML_ASSERT(id[i] >= 0 && id[i] < n_expert);
        w[i] = ld_sqrt_softplus(l[id[i]]);
        sum += w[i];
    }
    const float mul = norm ? scale/fmaxf(sum, clamp_min) : scale;
    for (int64_t i = 0; i < n_used; ++i) {
        w[i] *= mul;
    }
}

void longdesk_dsv4_moe_combine_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * experts = dst->src[0];
    const int64_t n_embd   = experts->ne[0];
    const int64_t n_used   = experts->ne[1];
    const int64_t n_tokens = experts->ne[2];

    // work items: (token, column chunk); decode (one token) still spreads over the threads
    const int64_t n_chunks = n_tokens >= params->nth ? 1 : (n_embd + LD_COMBINE_CHUNK - 1)/LD_COMBINE_CHUNK;
    const int64_t chunk    = n_chunks == 1 ? n_embd : LD_COMBINE_CHUNK;
    const int64_t n_items  = n_tokens*n_chunks;

    float w[LD_ROUTE_MAX_USED];
    int64_t w_token = -1;
    for (int64_t item = params->ith; item < n_items; item += params->nth) {
        const int64_t t  = item/n_chunks;
        const int64_t c0 = (item % n_chunks)*chunk;
        const int64_t nc = MIN(chunk, n_embd - c0);
        if (t != w_token) {
            ld_route_weights(dst, t, w);
            w_token = t;
        }
        float * out = (float *) ((char *) dst->data + t*dst->nb[1]) + c0;
        if (params->use_ref) {
            // plain: weight each expert's row and add them up in expert order
            for (int64_t c = 0; c < nc; ++c) {
                float acc = 0.0f;
                for (int64_t i = 0; i < n_used; ++i) {
                    acc += w[i]*ld_row_f32(experts, i, t)[c0 + c];
                }
                out[c] = acc;
            }
            continue;
        }
        memcpy(out, ld_row_f32(experts, 0, t) + c0, (size_t) nc*sizeof(float));
        ggml_vec_scale_f32((int) nc, out, w[0]);
        for (int64_t i = 1; i < n_used; ++i) {
            ggml_vec_mad_f32((int) nc, out, ld_row_f32(experts, i, t) + c0, w[i]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GGML_OP_DSV4_HC_GATES

static inline float ld_sigmoid(float x) {
    return 1.0f/(1.0f + expf(-x));
}

void longdesk_dsv4_hc_gates_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    // elementwise and tiny (2 x 4 gates per token): the plain loop is both branches
    const struct ggml_tensor * mixes = dst->src[0];
    const float * scale = (const float *) dst->src[1]->data;
    const float * base  = (const float *) dst->src[2]->data;
    const int64_t hc       = dst->ne[0];
    const int64_t n_tokens = dst->ne[1];
    const int64_t n_groups = dst->ne[2];  // 1: pre only (the head), 2: pre and post
    const float   eps      = ggml_get_op_params_f32(dst, 0);

    for (int64_t t = params->ith; t < n_tokens; t += params->nth) {
        const float * m = ld_row_f32(mixes, t, 0);
        float * pre = (float *) ((char *) dst->data + t*dst->nb[1]);
        for (int64_t j = 0; j < hc; ++j) {
            pre[j] = ld_sigmoid(m[j]*scale[0] + base[j]) + eps;
        }
        if (n_groups == 2) {
            float * post = (float *) ((char *) dst->data + t*dst->nb[1] + dst->nb[2]);
            for (int64_t j = 0; j < hc; ++j) {
                post[j] = 2.0f*ld_sigmoid(m[hc + j]*scale[1] + base[hc + j]);
            }
        }
    }
}
