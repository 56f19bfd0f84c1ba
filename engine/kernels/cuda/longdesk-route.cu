// Longdesk: DeepSeek-V4 MoE routing and hyper-connection gates (Op C), CUDA.
//
// GGML_OP_DSV4_MOE_TOPK
//   dst->src[0] logits F32 [n_expert, T]   dst->src[1] bias F32 [n_expert]
//   dst         I32 [n_used, T]: the n_used largest sqrt(softplus(logit)) + bias, best first
//   One warp per token: the scores go to shared memory, then n_used rounds of a warp arg-max
//   (ties to the lower expert index); the winner's score is set to -inf.
//
// GGML_OP_DSV4_MOE_COMBINE
//   dst->src[0] experts F32 [n_embd, n_used, T]   dst->src[1] logits F32 [n_expert, T]
//   dst->src[2] ids I32 [n_used, T]               op_params: norm (i32), clamp_min, scale (f32)
//   dst         F32 [n_embd, T] = sum_i w[i,t] * experts[:, i, t],
//               w = sqrt(softplus(logits[ids])), divided by max(sum, clamp_min) when norm, scaled
//   Grid (column blocks, T): each thread computes the token's n_used weights (n_used <= 32 reads
//   of the logits, cheaper than a second pass) and sums its column.
//
// GGML_OP_DSV4_HC_GATES
//   dst->src[0] mixes F32 [>= hc*G, T]   dst->src[1] scale F32 [G]   dst->src[2] base F32 [hc*G]
//   dst         F32 [hc, T, G]: pre = sigmoid(m*scale[0] + base) + eps (op_params[0]);
//               post (G == 2) = 2*sigmoid(m[hc+j]*scale[1] + base[hc+j])
//   One thread per output element.

#include "longdesk-route.cuh"

#include <cstdint>
#include <cstring>

#define ROUTE_MAX_USED      32
#define ROUTE_MAX_EXPERT    4096
#define ROUTE_COMBINE_BLOCK 256

static __device__ __forceinline__ float route_sqrt_softplus(float x) {
    return sqrtf(x > 20.0f ? x : logf(1.0f + expf(x)));
}

static __global__ void k_dsv4_moe_topk(
        const char * __restrict__ logits, const float * __restrict__ bias, int32_t * __restrict__ dst,
        int n_expert, int n_used, size_t nbl1, size_t nbd1) {
    extern __shared__ float s_score[];
    const int t    = blockIdx.x;
    const int lane = threadIdx.x;
    const float * l = (const float *) (logits + t*nbl1);
    for (int e = lane; e < n_expert; e += WARP_SIZE) {
        s_score[e] = route_sqrt_softplus(l[e]) + bias[e];
    }
    __syncwarp();
    int32_t * out = (int32_t *) ((char *) dst + t*nbd1);
    for (int j = 0; j < n_used; ++j) {
        float best = -INFINITY;
        int   arg  = n_expert;
        for (int e = lane; e < n_expert; e += WARP_SIZE) {
            const float v = s_score[e];
            if (v > best || (v == best && e < arg)) {
                best = v;
                arg  = e;
            }
        }
#pragma unroll
        for (int off = WARP_SIZE/2; off > 0; off >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffff, best, off);
            const int   oa = __shfl_xor_sync(0xffffffff, arg,  off);
            if (ov > best || (ov == best && oa < arg)) {
                best = ov;
                arg  = oa;
            }
        }
        if (lane == 0) {
            out[j] = arg < n_expert ? arg : 0;
            if (arg < n_expert) {
                s_score[arg] = -INFINITY;
            }
        }
        __syncwarp();
    }
}

static __global__ void k_dsv4_moe_combine(
        const char * __restrict__ experts, const char * __restrict__ logits, const char * __restrict__ ids,
        float * __restrict__ dst, int n_embd, int n_used, size_t nbe1, size_t nbe2, size_t nbl1, size_t nbi1,
        size_t nbd1, int norm, float clamp_min, float scale) {
    const int t = blockIdx.y;
    const int c = blockIdx.x*blockDim.x + threadIdx.x;
    const float   * l  = (const float *) (logits + t*nbl1);
    const int32_t * id = (const int32_t *) (ids + t*nbi1);
    float w[ROUTE_MAX_USED];
    float sum = 0.0f;
    for (int i = 0; i < n_used; ++i) {
        w[i] = route_sqrt_softplus(l[id[i]]);
        sum += w[i];
    }
    if (c >= n_embd) {
        return;
    }
    const float mul = norm ? scale/fmaxf(sum, clamp_min) : scale;
    float acc = 0.0f;
    for (int i = 0; i < n_used; ++i) {
        acc += w[i]*mul*((const float *) (experts + i*nbe1 + t*nbe2))[c];
    }
    ((float *) ((char *) dst + t*nbd1))[c] = acc;
}

static __global__ void k_dsv4_hc_gates(
        const char * __restrict__ mixes, const float * __restrict__ scale, const float * __restrict__ base,
        float * __restrict__ dst, int hc, int T, int groups, size_t nbm1, float eps) {
    const int i = blockIdx.x*blockDim.x + threadIdx.x;
    if (i >= hc*T*groups) {
        return;
    }
    const int j = i % hc;
    const int t = (i/hc) % T;
    const int g = i/(hc*T);
    const float m = ((const float *) (mixes + t*nbm1))[g*hc + j];
    const float s = 1.0f/(1.0f + expf(-(m*scale[g] + base[g*hc + j])));
    dst[i] = g == 0 ? s + eps : 2.0f*s;
}

void ggml_cuda_op_dsv4_moe_topk(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * logits = dst->src[0];
    const ggml_tensor * bias   = dst->src[1];
    const int n_expert = (int) logits->ne[0];
    const int n_used   = (int) dst->ne[0];
    const int T        = (int) logits->ne[1];
    if (T == 0) {
        return;
    }
    k_dsv4_moe_topk<<<T, WARP_SIZE, n_expert*sizeof(float), ctx.stream()>>>(
        (const char *) logits->data, (const float *) bias->data, (int32_t *) dst->data,
        n_expert, n_used, logits->nb[1], dst->nb[1]);
    CUDA_CHECK(cudaGetLastError());
}

void ggml_cuda_op_dsv4_moe_combine(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * experts = dst->src[0];
    const ggml_tensor * logits  = dst->src[1];
    const ggml_tensor * ids     = dst->src[2];
    const int n_embd = (int) experts->ne[0];
    const int n_used = (int) experts->ne[1];
    const int T      = (int) experts->ne[2];
    if (T == 0) {
        return;
    }
    int32_t norm;
    float clamp_min, scale;
    memcpy(&norm,      (const int32_t *) dst->op_params + 0, sizeof(int32_t));
    memcpy(&clamp_min, (const float *)   dst->op_params + 1, sizeof(float));
    memcpy(&scale,     (const float *)   dst->op_params + 2, sizeof(float));
    const dim3 grid((n_embd + ROUTE_COMBINE_BLOCK - 1)/ROUTE_COMBINE_BLOCK, T);
    k_dsv4_moe_combine<<<grid, ROUTE_COMBINE_BLOCK, 0, ctx.stream()>>>(
        (const char *) experts->data, (const char *) logits->data, (const char *) ids->data, (float *) dst->data,
        n_embd, n_used, experts->nb[1], experts->nb[2], logits->nb[1], ids->nb[1], dst->nb[1],
        norm, clamp_min, scale);
    CUDA_CHECK(cudaGetLastError());
}

void ggml_cuda_op_dsv4_hc_gates(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * mixes = dst->src[0];
    const int hc     = (int) dst->ne[0];
    const int T      = (int) dst->ne[1];
    const int groups = (int) dst->ne[2];
    const int n      = hc*T*groups;
    if (n == 0) {
        return;
    }
    float eps;
    memcpy(&eps, (const float *) dst->op_params + 0, sizeof(float));
    k_dsv4_hc_gates<<<(n + 255)/256, 256, 0, ctx.stream()>>>(
        (const char *) mixes->data, (const float *) dst->src[1]->data, (const float *) dst->src[2]->data,
        (float *) dst->data, hc, T, groups, mixes->nb[1], eps);
    CUDA_CHECK(cudaGetLastError());
}

bool ggml_cuda_dsv4_route_supported(int device, const ggml_tensor * op) {
    GGML_UNUSED(device);
    const int n_src = op->op == GGML_OP_DSV4_MOE_TOPK ? 2 : 3;
    for (int i = 0; i < n_src; ++i) {
        if (!op->src[i] || op->src[i]->nb[0] != ggml_type_size(op->src[i]->type)) {
            return false;
        }
    }
    switch (op->op) {
        case GGML_OP_DSV4_MOE_TOPK:
            return op->src[0]->ne[0] <= ROUTE_MAX_EXPERT && op->ne[0] <= ROUTE_MAX_USED;
        case GGML_OP_DSV4_MOE_COMBINE:
            return op->src[0]->ne[1] <= ROUTE_MAX_USED && ggml_is_contiguous(op);
        case GGML_OP_DSV4_HC_GATES:
            return ggml_is_contiguous(op) && ggml_is_contiguous(op->src[1]) && ggml_is_contiguous(op->src[2]);
        default:
            return false;
    }
}
