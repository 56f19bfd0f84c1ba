// Longdesk: fused lightning indexer + causal bound + top-k (GGML_OP_DSV4_INDEXER_TOPK), CUDA.
//
//   dst->src[0] q     F32 [D, n_head, T, S]      indexer queries (after RoPE + Hadamard)
//   dst->src[1] k     F16|Q8_0|F32 [D, 1, n_kv, S]  indexer key cache view (a [D, n_kv, 1, S] view works too)
//   dst->src[2] w     F32 [n_head, T, 1, S]      head weights, prescaled
//   dst->src[3] n_vis I32 [T, S]                 compressed rows visible to token t
//   dst         I32 [top_k, T, 1, S]             indices of the top_k largest
//                     score(t,j) = sum_h w[h,t] * relu(dot(q[:,h,t], k[:,j])),  j < n_vis(t)
//                     unordered, -1 padded; ties: any choice among equals.
//
// Two kernels, no score matrix:
//   1. score: one block per (key range, token, stream). The token's queries stay in shared memory;
//      the block streams its key range in chunks of ITOPK_CH keys (each chunk converted to F32
//      once), scores them with an F32 register tile (a warp = 8 heads x 2 keys per lane) and feeds
//      the scores to a block-local running top-k: a candidate pool with a threshold, cut back to
//      top_k by a 4-pass radix select on the float bits whenever the next chunk might not fit.
//      Keys at or past n_vis(t) are never loaded (causal bound).
//   2. merge (only when the key range was split across blocks): per token, the same running top-k
//      over the n_split * top_k candidates.
// The number of key ranges is chosen so that small batches (decode) still fill the GPU; a large
// batch (prefill) uses one range per token and skips the merge.
// Scores are F32 throughout (no half rounding of q), so the selected sets match the CPU reference
// except for exact ties.

#include "longdesk-indexer-topk.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>

#define ITOPK_THREADS  256              // 8 warps; the radix select assumes exactly 256 threads
#define ITOPK_WARPS    (ITOPK_THREADS/WARP_SIZE)
#define ITOPK_CH       64               // keys per scoring chunk (2 per lane)
#define ITOPK_MAX_HEAD 64               // heads: 8 per warp
#define ITOPK_MAX_D    128
#define ITOPK_MAX_K    1024
#define ITOPK_MIN_SPAN 256              // keys per block at least, when the range is split

static_assert(ITOPK_THREADS == 256, "radix select uses one thread per 8-bit digit");
static_assert(ITOPK_MAX_HEAD == 8*ITOPK_WARPS, "8 heads per warp");
static_assert(ITOPK_CH == 2*WARP_SIZE, "2 keys per lane");

// -------------------------------------------------------------------------------------------------
// Block-local running top-k over (value, index) pairs in shared memory.

static __host__ __device__ constexpr int itopk_pool_cap(const int top_k) {
    return 2*top_k + ITOPK_THREADS;  // room for top_k kept + slack + one offered chunk (<= 256)
}

struct itopk_pool {
    float    * val[2];   // ping-pong buffers, itopk_pool_cap(top_k) each
    int      * idx[2];
    unsigned * hist;     // 256 bins
    int      * misc;     // [0] count, [1] cur buffer, [2] digit, [3] count above digit, [4] ties taken, [5] gt taken
    float    * thr;      // [0] running threshold: a value must be > thr to enter
    int        cap;
    int        top_k;
};

static __device__ __forceinline__ unsigned itopk_key(const float f) {
    const unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // order-preserving map float -> unsigned
}

static __device__ __forceinline__ float itopk_unkey(const unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

static __device__ void itopk_pool_init(itopk_pool & p, char * smem, const int top_k) {
    p.top_k = top_k;
    p.cap   = itopk_pool_cap(top_k);
    p.val[0] = (float *) smem;
    p.val[1] = p.val[0] + p.cap;
    p.idx[0] = (int *) (p.val[1] + p.cap);
    p.idx[1] = p.idx[0] + p.cap;
    p.hist   = (unsigned *) (p.idx[1] + p.cap);
    p.misc   = (int *) (p.hist + 256);
    p.thr    = (float *) (p.misc + 8);
    if (threadIdx.x == 0) {
        p.misc[0] = 0;
        p.misc[1] = 0;
        p.thr[0]  = -INFINITY;
    }
    __syncthreads();
}

static __host__ __device__ constexpr size_t itopk_pool_bytes(const int top_k) {
    return (size_t) itopk_pool_cap(top_k)*2*(sizeof(float) + sizeof(int)) + 256*sizeof(unsigned) + 8*sizeof(int) + 4*sizeof(float);
}

// Cut the pool back to exactly top_k entries (when it holds more): the top_k-th largest key is
// found digit by digit (8 bits per pass, most significant first), then entries above it and as
// many equal to it as needed are copied to the other buffer. Called by all threads.
static __device__ void itopk_pool_reduce(itopk_pool & p) {
    const int tid = threadIdx.x;
    const int n   = p.misc[0];
    const int cur = p.misc[1];
    if (n <= p.top_k) {
        return;  // uniform: every thread read the same n after the last barrier
    }
    const float * v = p.val[cur];
    const int   * x = p.idx[cur];

    __shared__ int warp_sums[ITOPK_WARPS];

    unsigned prefix = 0;
    int      want   = p.top_k;  // how many of the entries matching `prefix` so far are still needed
    for (int shift = 24; shift >= 0; shift -= 8) {
        p.hist[tid] = 0;
        __syncthreads();
        for (int i = tid; i < n; i += ITOPK_THREADS) {
            const unsigned key = itopk_key(v[i]);
            if (shift == 24 || (key >> (shift + 8)) == (prefix >> (shift + 8))) {
                atomicAdd(&p.hist[(key >> shift) & 0xffu], 1u);
            }
        }
        __syncthreads();

        // suffix sums over the digits: thread tid handles digit b = 255 - tid
        const int b   = 255 - tid;
        const int hb  = (int) p.hist[b];
        int incl = hb;
#pragma unroll
        for (int off = 1; off < WARP_SIZE; off <<= 1) {
            const int y = __shfl_up_sync(0xffffffff, incl, off);
            if ((tid % WARP_SIZE) >= off) {
                incl += y;
            }
        }
        if (tid % WARP_SIZE == WARP_SIZE - 1) {
            warp_sums[tid / WARP_SIZE] = incl;
        }
        __syncthreads();
        for (int w = 0; w < tid / WARP_SIZE; ++w) {
            incl += warp_sums[w];
        }
        // incl = number of matching entries whose digit is >= b
        const int above = incl - hb;  // digit > b
        if (hb > 0 && incl >= want && above < want) {
            p.misc[2] = b;
            p.misc[3] = above;
        }
        __syncthreads();
        prefix |= ((unsigned) p.misc[2]) << shift;
        want   -= p.misc[3];
        __syncthreads();  // misc[2..3] and hist are rewritten in the next pass
    }
    // prefix = key of the top_k-th largest value; keep every key > prefix (top_k - want of them)
    // and `want` of the keys == prefix.
    const int n_gt = p.top_k - want;
    if (tid == 0) {
        p.misc[4] = 0;
        p.misc[5] = 0;
    }
    __syncthreads();
    float * vo = p.val[cur ^ 1];
    int   * xo = p.idx[cur ^ 1];
    for (int i = tid; i < n; i += ITOPK_THREADS) {
        const unsigned key = itopk_key(v[i]);
        int slot = -1;
        if (key > prefix) {
            slot = atomicAdd(&p.misc[5], 1);
        } else if (key == prefix) {
            const int e = atomicAdd(&p.misc[4], 1);
            slot = e < want ? n_gt + e : -1;
        }
        if (slot >= 0) {
            vo[slot] = v[i];
            xo[slot] = x[i];
        }
    }
    __syncthreads();
    if (tid == 0) {
        p.misc[0] = p.top_k;
        p.misc[1] = cur ^ 1;
        p.thr[0]  = itopk_unkey(prefix);
    }
    __syncthreads();
}

// Every thread offers at most one candidate; the pool must have room for ITOPK_THREADS more
// (guaranteed by the reduce at the end of the previous offer).
static __device__ void itopk_pool_offer(itopk_pool & p, const bool has, const float value, const int index) {
    const float thr = p.thr[0];
    if (has && value > thr) {
        const int slot = atomicAdd(&p.misc[0], 1);
        p.val[p.misc[1]][slot] = value;
        p.idx[p.misc[1]][slot] = index;
    }
    __syncthreads();
    if (p.misc[0] > p.cap - ITOPK_THREADS) {
        itopk_pool_reduce(p);
    }
}

// Final cut to top_k, then write the indices (and values when vout != nullptr), padded.
static __device__ void itopk_pool_write(itopk_pool & p, int * iout, float * vout) {
    __syncthreads();
    itopk_pool_reduce(p);
    const int n   = p.misc[0];
    const int cur = p.misc[1];
    for (int i = threadIdx.x; i < p.top_k; i += ITOPK_THREADS) {
        const bool ok = i < n;
        iout[i] = ok ? p.idx[cur][i] : -1;
        if (vout) {
            vout[i] = ok ? p.val[cur][i] : -INFINITY;
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Kernel 1: scores of one key range for one token, block-local top-k.

struct itopk_args {
    const char * q; const char * k; const char * w; const char * nvis;
    char * dst;                 // final indices (n_split == 1)
    int  * cand_i;              // [S][T][n_split][top_k] (n_split > 1)
    float * cand_v;
    int D, n_head, n_kv, T, top_k, n_split, span;
    size_t nbq1, nbq2, nbq3;
    size_t nbk_row, nbk3;
    size_t nbw0, nbw1, nbw3;
    size_t nbv0, nbv1;
    size_t nbd1, nbd3;
};

static __host__ size_t itopk_score_smem(const int D, const int top_k) {
    return (size_t) ITOPK_MAX_HEAD*D*sizeof(float)              // q
         + (size_t) ITOPK_CH*(D + 4)*sizeof(float)              // k chunk, padded rows
         + (size_t) ITOPK_MAX_HEAD*sizeof(float)                // w
         + (size_t) ITOPK_WARPS*ITOPK_CH*sizeof(float)          // per-warp partial scores
         + itopk_pool_bytes(top_k);
}

template <ggml_type TYPE_K>
static __device__ __forceinline__ void itopk_load_k_chunk(
        float * k_s, const char * k_base, const size_t nb_row, const int D, const int c0, const int c_end) {
    const int DP = D + 4;
    if constexpr (TYPE_K == GGML_TYPE_F16) {
        const int n2 = ITOPK_CH*D/2;
        for (int e = threadIdx.x; e < n2; e += ITOPK_THREADS) {
            const int r = e / (D/2);
            const int c = e % (D/2);
            float2 f = make_float2(0.0f, 0.0f);
            if (c0 + r < c_end) {
                f = __half22float2(((const half2 *) (k_base + (size_t) (c0 + r)*nb_row))[c]);
            }
            k_s[r*DP + 2*c + 0] = f.x;
            k_s[r*DP + 2*c + 1] = f.y;
        }
    } else if constexpr (TYPE_K == GGML_TYPE_Q8_0) {
        const int n = ITOPK_CH*D;
        for (int e = threadIdx.x; e < n; e += ITOPK_THREADS) {
            const int r = e / D;
            const int c = e % D;
            float f = 0.0f;
            if (c0 + r < c_end) {
                const block_q8_0 * b = (const block_q8_0 *) (k_base + (size_t) (c0 + r)*nb_row) + c/QK8_0;
                f = __half2float(b->d) * (float) b->qs[c % QK8_0];
            }
            k_s[r*DP + c] = f;
        }
    } else {
        static_assert(TYPE_K == GGML_TYPE_F32, "unsupported K type");
        const int n4 = ITOPK_CH*D/4;
        for (int e = threadIdx.x; e < n4; e += ITOPK_THREADS) {
            const int r = e / (D/4);
            const int c = e % (D/4);
            float4 f = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (c0 + r < c_end) {
                f = ((const float4 *) (k_base + (size_t) (c0 + r)*nb_row))[c];
            }
            *(float4 *) &k_s[r*DP + 4*c] = f;
        }
    }
}

template <ggml_type TYPE_K>
static __global__ void __launch_bounds__(ITOPK_THREADS)
k_dsv4_itopk_score(const itopk_args a) {
    extern __shared__ __align__(16) char itopk_smem[];
    const int split = blockIdx.x;
    const int t     = blockIdx.y;
    const int s     = blockIdx.z;
    const int tid   = threadIdx.x;
    const int warp  = tid / WARP_SIZE;
    const int lane  = tid % WARP_SIZE;
    const int D     = a.D;
    const int DP    = D + 4;

    float * q_s    = (float *) itopk_smem;                 // [64][D], heads >= n_head are zero
    float * k_s    = q_s + ITOPK_MAX_HEAD*D;                // [CH][D+4]
    float * w_s    = k_s + ITOPK_CH*DP;                     // [64]
    float * part_s = w_s + ITOPK_MAX_HEAD;                  // [8][CH]
    itopk_pool pool;
    itopk_pool_init(pool, (char *) (part_s + ITOPK_WARPS*ITOPK_CH), a.top_k);

    const int nv    = min(*(const int *) (a.nvis + t*a.nbv0 + s*a.nbv1), a.n_kv);
    const int start = split*a.span;
    const int end   = min(start + a.span, nv);

    if (start < end) {
        const char * q_base = a.q + t*a.nbq2 + s*a.nbq3;
        for (int e = tid; e < ITOPK_MAX_HEAD*D; e += ITOPK_THREADS) {
            const int h = e / D;
            const int d = e % D;
            q_s[e] = h < a.n_head ? ((const float *) (q_base + h*a.nbq1))[d] : 0.0f;
        }
        if (tid < ITOPK_MAX_HEAD) {
            w_s[tid] = tid < a.n_head ? *(const float *) (a.w + tid*a.nbw0 + t*a.nbw1 + s*a.nbw3) : 0.0f;
        }
        const char * k_base = a.k + s*a.nbk3;

        for (int c0 = start; c0 < end; c0 += ITOPK_CH) {
            itopk_load_k_chunk<TYPE_K>(k_s, k_base, a.nbk_row, D, c0, end);
            __syncthreads();

            // warp: heads warp, warp+8, ...; lane: keys lane and lane+32 of the chunk
            float acc[ITOPK_MAX_HEAD/ITOPK_WARPS][2] = {{0.0f}};
            const float4 * k0 = (const float4 *) (k_s + lane*DP);
            const float4 * k1 = (const float4 *) (k_s + (lane + WARP_SIZE)*DP);
            for (int d4 = 0; d4 < D/4; ++d4) {
                const float4 ka = k0[d4];
                const float4 kb = k1[d4];
#pragma unroll
                for (int i = 0; i < ITOPK_MAX_HEAD/ITOPK_WARPS; ++i) {
                    const float4 qv = ((const float4 *) (q_s + (warp + ITOPK_WARPS*i)*D))[d4];
                    acc[i][0] += qv.x*ka.x + qv.y*ka.y + qv.z*ka.z + qv.w*ka.w;
                    acc[i][1] += qv.x*kb.x + qv.y*kb.y + qv.z*kb.z + qv.w*kb.w;
                }
            }
            float sa = 0.0f;
            float sb = 0.0f;
#pragma unroll
            for (int i = 0; i < ITOPK_MAX_HEAD/ITOPK_WARPS; ++i) {
                const float wh = w_s[warp + ITOPK_WARPS*i];
                sa += wh*fmaxf(acc[i][0], 0.0f);
                sb += wh*fmaxf(acc[i][1], 0.0f);
            }
            part_s[warp*ITOPK_CH + lane]             = sa;
            part_s[warp*ITOPK_CH + lane + WARP_SIZE] = sb;
            __syncthreads();

            float score = 0.0f;
            if (tid < ITOPK_CH) {
#pragma unroll
                for (int w = 0; w < ITOPK_WARPS; ++w) {
                    score += part_s[w*ITOPK_CH + tid];
                }
            }
            itopk_pool_offer(pool, tid < ITOPK_CH && c0 + tid < end, score, c0 + tid);  // ends with a barrier
        }
    }

    if (a.n_split == 1) {
        itopk_pool_write(pool, (int *) (a.dst + t*a.nbd1 + s*a.nbd3), nullptr);
    } else {
        const size_t off = (((size_t) s*a.T + t)*a.n_split + split)*a.top_k;
        itopk_pool_write(pool, a.cand_i + off, a.cand_v + off);
    }
}

// -------------------------------------------------------------------------------------------------
// Kernel 2: merge the per-range candidates of one token.

static __global__ void __launch_bounds__(ITOPK_THREADS)
k_dsv4_itopk_merge(const int * cand_i, const float * cand_v, char * dst,
        const int T, const int n_split, const int top_k, const size_t nbd1, const size_t nbd3) {
    extern __shared__ __align__(16) char itopk_smem[];
    const int t = blockIdx.x;
    const int s = blockIdx.y;
    itopk_pool pool;
    itopk_pool_init(pool, itopk_smem, top_k);

    const int    n   = n_split*top_k;
    const size_t off = ((size_t) s*T + t)*n;
    for (int c0 = 0; c0 < n; c0 += ITOPK_THREADS) {
        const int  i   = c0 + threadIdx.x;
        const bool in  = i < n;
        const int  id  = in ? cand_i[off + i] : -1;
        const float v  = in ? cand_v[off + i] : -INFINITY;
        itopk_pool_offer(pool, id >= 0, v, id);
    }
    itopk_pool_write(pool, (int *) (dst + t*nbd1 + s*nbd3), nullptr);
}

// -------------------------------------------------------------------------------------------------

static int itopk_rows(const ggml_tensor * k, size_t * nb_row) {
    // [D, 1, n_kv, S] (the cache view) or [D, n_kv, 1, S]
    if (k->ne[1] == 1) {
        *nb_row = k->nb[2];
        return (int) k->ne[2];
    }
    *nb_row = k->nb[1];
    return (int) k->ne[1];
}

void ggml_cuda_op_dsv4_indexer_topk(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * q    = dst->src[0];
    const ggml_tensor * k    = dst->src[1];
    const ggml_tensor * w    = dst->src[2];
    const ggml_tensor * nvis = dst->src[3];

    GGML_ASSERT(q->type == GGML_TYPE_F32 && w->type == GGML_TYPE_F32);
    GGML_ASSERT(nvis->type == GGML_TYPE_I32 && dst->type == GGML_TYPE_I32);
    GGML_ASSERT(q->nb[0] == sizeof(float) && dst->nb[0] == sizeof(int32_t));
    GGML_ASSERT(k->ne[1] == 1 || k->ne[2] == 1);

    itopk_args a = {};
    a.D       = (int) q->ne[0];
    a.n_head  = (int) q->ne[1];
    a.T       = (int) q->ne[2];
    a.top_k   = (int) dst->ne[0];
    a.n_kv    = itopk_rows(k, &a.nbk_row);
    GGML_ASSERT(a.D % 4 == 0 && a.D <= ITOPK_MAX_D && a.n_head <= ITOPK_MAX_HEAD);
    GGML_ASSERT(a.top_k >= 1 && a.top_k <= ITOPK_MAX_K);
    GGML_ASSERT(k->ne[0] == a.D && dst->ne[1] == a.T);
    const int S = (int) q->ne[3];

    a.q = (const char *) q->data;  a.nbq1 = q->nb[1]; a.nbq2 = q->nb[2]; a.nbq3 = q->nb[3];
    a.k = (const char *) k->data;  a.nbk3 = k->nb[3];
    a.w = (const char *) w->data;  a.nbw0 = w->nb[0]; a.nbw1 = w->nb[1]; a.nbw3 = w->nb[3];
    a.nvis = (const char *) nvis->data; a.nbv0 = nvis->nb[0]; a.nbv1 = nvis->nb[1];
    a.dst = (char *) dst->data;    a.nbd1 = dst->nb[1]; a.nbd3 = dst->nb[3];

    const int device = ggml_cuda_get_device();
    const int nsm    = ggml_cuda_info().devices[device].nsm;

    // Split the key range only when the batch alone does not fill the GPU (decode, small batches).
    // A range's scoring time grows with its length, the merge with n_split*top_k candidates; a span
    // of ~sqrt(64*n_kv) keys balances the two (512 keys at n_kv = 4096, 4096 at n_kv = 262144).
    const int rows_per_split = std::max(ITOPK_MIN_SPAN, (int) sqrt(64.0*a.n_kv));
    const int max_split      = std::max(1, (a.n_kv + rows_per_split - 1) / rows_per_split);
    const int want_split     = (2*nsm + a.T*S - 1) / (a.T*S);
    a.n_split = std::max(1, std::min(max_split, want_split));
    a.span    = (a.n_kv + a.n_split - 1) / a.n_split;
    a.span    = (a.span + ITOPK_CH - 1) / ITOPK_CH * ITOPK_CH;

    ggml_cuda_pool_alloc<int>   cand_i(ctx.pool());
    ggml_cuda_pool_alloc<float> cand_v(ctx.pool());
    if (a.n_split > 1) {
        const size_t n = (size_t) S*a.T*a.n_split*a.top_k;
        a.cand_i = cand_i.alloc(n);
        a.cand_v = cand_v.alloc(n);
    }

    cudaStream_t stream = ctx.stream();
    const size_t smem   = itopk_score_smem(a.D, a.top_k);
    const size_t smpbo    = ggml_cuda_info().devices[device].smpbo;
    // raised once per kernel and device, to the most any supported shape needs on this device
    const size_t smem_max = std::min(itopk_score_smem(ITOPK_MAX_D, ITOPK_MAX_K), smpbo);
    GGML_ASSERT(smem <= smem_max);
    const dim3 grid(a.n_split, a.T, S);
    switch (k->type) {
        case GGML_TYPE_F16:
            CUDA_SET_SHARED_MEMORY_LIMIT(k_dsv4_itopk_score<GGML_TYPE_F16>, smem_max);
            k_dsv4_itopk_score<GGML_TYPE_F16><<<grid, ITOPK_THREADS, smem, stream>>>(a);
            break;
        case GGML_TYPE_Q8_0:
            CUDA_SET_SHARED_MEMORY_LIMIT(k_dsv4_itopk_score<GGML_TYPE_Q8_0>, smem_max);
            k_dsv4_itopk_score<GGML_TYPE_Q8_0><<<grid, ITOPK_THREADS, smem, stream>>>(a);
            break;
        case GGML_TYPE_F32:
            CUDA_SET_SHARED_MEMORY_LIMIT(k_dsv4_itopk_score<GGML_TYPE_F32>, smem_max);
            k_dsv4_itopk_score<GGML_TYPE_F32><<<grid, ITOPK_THREADS, smem, stream>>>(a);
            break;
        default:
            GGML_ABORT("dsv4_indexer_topk: unsupported K type %s", ggml_type_name(k->type));
    }

    if (a.n_split > 1) {
        const size_t smem_merge = itopk_pool_bytes(a.top_k);
        CUDA_SET_SHARED_MEMORY_LIMIT(k_dsv4_itopk_merge, std::min(itopk_pool_bytes(ITOPK_MAX_K), smpbo));
        k_dsv4_itopk_merge<<<dim3(a.T, S), ITOPK_THREADS, smem_merge, stream>>>(
            a.cand_i, a.cand_v, a.dst, a.T, a.n_split, a.top_k, a.nbd1, a.nbd3);
    }
}

bool ggml_cuda_dsv4_indexer_topk_supported(int device, const ggml_tensor * op) {
    const ggml_tensor * q    = op->src[0];
    const ggml_tensor * k    = op->src[1];
    const ggml_tensor * w    = op->src[2];
    const ggml_tensor * nvis = op->src[3];
    if (!q || !k || !w || !nvis) {
        return false;
    }
    if (q->type != GGML_TYPE_F32 || w->type != GGML_TYPE_F32 || nvis->type != GGML_TYPE_I32 || op->type != GGML_TYPE_I32) {
        return false;
    }
    const int D = (int) q->ne[0];
    if (D % 4 != 0 || D > ITOPK_MAX_D || q->ne[1] > ITOPK_MAX_HEAD || k->ne[0] != D) {
        return false;
    }
    if (op->ne[0] < 1 || op->ne[0] > ITOPK_MAX_K) {
        return false;
    }
    if (k->ne[1] != 1 && k->ne[2] != 1) {
        return false;
    }
    // rows read as float4 / half2
    if (q->nb[0] != sizeof(float) || q->nb[1] % 16 != 0 || k->nb[0] != ggml_type_size(k->type)) {
        return false;
    }
    switch (k->type) {
        case GGML_TYPE_F16:
            if (k->nb[1] % 4 != 0 || k->nb[2] % 4 != 0) {
                return false;
            }
            break;
        case GGML_TYPE_Q8_0:
            if (D % QK8_0 != 0) {
                return false;
            }
            break;
        case GGML_TYPE_F32:
            if (k->nb[1] % 16 != 0 || k->nb[2] % 16 != 0) {
                return false;
            }
            break;
        default:
            return false;
    }
    return itopk_score_smem(D, (int) op->ne[0]) + 256 <= ggml_cuda_info().devices[device].smpbo;  // + static shared
}
