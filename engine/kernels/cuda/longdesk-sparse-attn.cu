// Longdesk: gather sparse attention (GGML_OP_DSV4_SPARSE_ATTN), CUDA.
//
//   dst->src[0] q        F32 [D, n_head, T, S]
//   dst->src[1] raw_k    F16 [D, n_raw, 1, S]     raw sliding-window cache, K == V, one KV head
//   dst->src[2] raw_mask F16 [n_raw, T, 1, 1|S]   0 or -inf (causal + window)
//   dst->src[3] comp_k   F16 [D, n_comp, 1, S]    compressed cache, K == V
//   dst->src[4] n_vis    I32 [T, S]
//   idx   I32 [k, T, 1, S] selected compressed rows (-1 = none), in the slot op_params[1] names
//         (-1: absent, meaning all rows < n_vis, as for HCA)
//   sinks F32 [n_head], in the slot op_params[2] names (-1: absent)
//   op_params[0]         float scale
// (the core patch packs the optional sources from slot 5: engine/kernels/README.md)
//   dst          F32, D x n_head x T x S contiguous (what build_attn_mha's reshaped output holds)
//
// softmax over {finite raw rows} u {selected compressed rows} u {sink}; values = the same rows.
//
// One block per (group of 8 heads, token, stream); warp w = head 8*blockIdx.x + w. The block walks
// the token's row list (finite raw rows first, then the selected compressed rows), 32 rows at a
// time: warp 0 compacts the next candidates with a ballot, all threads stage those rows (F16) in
// shared memory once, and every warp (head) consumes the staged tile with an online softmax:
// lane l owns dims 2l, 2l+1 (+64 i) of q (pre-scaled, in registers) and of its output accumulator.
// No mask over the compressed cache, no concat, no score matrix; cost per token is independent of
// the context length for CSA layers (<= n_raw + k rows).
// Small batches (decode: a handful of blocks otherwise) split each token's candidate sequence into
// ranges, one block each, that write partial (max, sum, output) triples; a one-warp combine kernel
// per (head, token) adds them and the sink.

#include "longdesk-sparse-attn.cuh"

#include <algorithm>
#include <cstdint>
#include <cstring>

#define SATTN_THREADS 256
#define SATTN_WARPS   (SATTN_THREADS/WARP_SIZE)   // heads per block
#define SATTN_TILE    32                          // rows staged per step (one per lane for the scores)
#define SATTN_MIN_SPLIT 128                       // candidates per block at least, when split

struct sattn_args {
    const char * q; const char * raw_k; const char * raw_mask; const char * comp_k;
    const char * idx; const char * nvis; const float * sinks;
    float * dst;
    float * part;               // n_split > 1: per split, head, token, stream: m, l, o[D]
    int n_head, T, n_raw, n_comp, n_idx;
    int n_split, split_len;     // the candidate sequence (raw rows, then compressed candidates) in ranges
    float scale;
    size_t nbq1, nbq2, nbq3;
    size_t nbr_row, nbr3;
    size_t nbm1, nbm3; int nem3;
    size_t nbc_row, nbc3;
    size_t nbi1, nbi3;
    size_t nbv0, nbv1;
    size_t nbd1, nbd2, nbd3;
};

template <int D>
static __global__ void __launch_bounds__(SATTN_THREADS)
k_dsv4_sparse_attn(const sattn_args a) {
    static_assert(D % 64 == 0 && D <= 512, "head size: a multiple of 64, at most 512");
    constexpr int NL = D/64;  // half2 per lane per row

    __shared__ half2        k_s[SATTN_TILE][D/2];
    __shared__ const half * row_ptr[SATTN_TILE];
    __shared__ float        row_bias[SATTN_TILE];
    __shared__ int          cursor[3];   // [0] next raw candidate, [1] next compressed candidate, [2] rows in tile

    const int hg    = blockIdx.x % ((a.n_head + SATTN_WARPS - 1)/SATTN_WARPS);
    const int split = blockIdx.x / ((a.n_head + SATTN_WARPS - 1)/SATTN_WARPS);
    const int t    = blockIdx.y;
    const int s    = blockIdx.z;
    const int tid  = threadIdx.x;
    const int warp = tid / WARP_SIZE;
    const int lane = tid % WARP_SIZE;
    const int h    = hg*SATTN_WARPS + warp;
    const bool active = h < a.n_head;

    const int nv = min(*(const int *) (a.nvis + t*a.nbv0 + s*a.nbv1), a.n_comp);
    const int n_comp_cand = a.idx ? a.n_idx : max(nv, 0);
    // this block's range [p0, p1) of the candidate sequence: raw rows [0, n_raw), then candidates
    const int p0      = split*a.split_len;
    const int p1      = a.n_split == 1 ? a.n_raw + n_comp_cand : min(p0 + a.split_len, a.n_raw + n_comp_cand);
    const int raw_end = min(p1, a.n_raw);
    const int cmp_end = max(p1 - a.n_raw, 0);

    const half  * mask_row = (const half *) (a.raw_mask + t*a.nbm1 + (s % a.nem3)*a.nbm3);
    const char  * raw_base = a.raw_k  + s*a.nbr3;
    const char  * cmp_base = a.comp_k + s*a.nbc3;
    const int   * idx_row  = a.idx ? (const int *) (a.idx + t*a.nbi1 + s*a.nbi3) : nullptr;

    float2 qr[NL];
    float2 o[NL];
    {
        const float * qh = (const float *) (a.q + (active ? h : 0)*a.nbq1 + t*a.nbq2 + s*a.nbq3);
#pragma unroll
        for (int i = 0; i < NL; ++i) {
            const float2 v = *(const float2 *) (qh + 2*lane + 64*i);
            qr[i] = make_float2(v.x*a.scale, v.y*a.scale);
            o[i]  = make_float2(0.0f, 0.0f);
        }
    }
    float m = -INFINITY;  // running max of the scores
    float l = 0.0f;       // running sum of exp(score - m)

    if (tid == 0) {
        cursor[0] = min(p0, a.n_raw);
        cursor[1] = max(p0 - a.n_raw, 0);
    }
    __syncthreads();

    while (true) {
        // ---- warp 0: compact the next candidates into the tile's row list
        if (warp == 0) {
            int cnt = 0;
            int rp  = cursor[0];
            int cp  = cursor[1];
            while (rp < raw_end) {
                const int  j  = rp + lane;
                const float b = j < raw_end ? __half2float(mask_row[j]) : -INFINITY;
                const bool ok = b != -INFINITY;   // finite rows only
                const unsigned bal = __ballot_sync(0xffffffff, ok);
                const int  nb = __popc(bal);
                if (cnt + nb > SATTN_TILE) {
                    break;                        // the whole group goes into the next tile
                }
                if (ok) {
                    const int pos = cnt + __popc(bal & ((1u << lane) - 1u));
                    row_ptr[pos]  = (const half *) (raw_base + (size_t) j*a.nbr_row);
                    row_bias[pos] = b;
                }
                cnt += nb;
                rp  += WARP_SIZE;
            }
            if (rp >= raw_end) {
                while (cp < cmp_end) {
                    const int i = cp + lane;
                    int r = -1;
                    if (i < cmp_end) {
                        r = idx_row ? idx_row[i] : i;
                    }
                    const bool ok = r >= 0 && r < nv;
                    const unsigned bal = __ballot_sync(0xffffffff, ok);
                    const int  nb = __popc(bal);
                    if (cnt + nb > SATTN_TILE) {
                        break;
                    }
                    if (ok) {
                        const int pos = cnt + __popc(bal & ((1u << lane) - 1u));
                        row_ptr[pos]  = (const half *) (cmp_base + (size_t) r*a.nbc_row);
                        row_bias[pos] = 0.0f;
                    }
                    cnt += nb;
                    cp  += WARP_SIZE;
                }
            }
            if (lane == 0) {
                cursor[0] = rp;
                cursor[1] = cp;
                cursor[2] = cnt;
            }
        }
        __syncthreads();
        const int cnt = cursor[2];
        if (cnt == 0) {
            break;  // uniform: no rows left
        }

        // ---- all threads: stage the tile's rows
        for (int e = tid; e < cnt*(D/2); e += SATTN_THREADS) {
            const int r = e / (D/2);
            const int c = e % (D/2);
            k_s[r][c] = ((const half2 *) row_ptr[r])[c];
        }
        __syncthreads();

        // ---- each warp (head): scores of the tile, online softmax, accumulate V (= K)
        if (active) {
            float score = -INFINITY;  // lane r keeps the score of row r
            for (int r = 0; r < cnt; ++r) {
                float acc = 0.0f;
#pragma unroll
                for (int i = 0; i < NL; ++i) {
                    const float2 kv = __half22float2(k_s[r][lane + WARP_SIZE*i]);
                    acc += qr[i].x*kv.x + qr[i].y*kv.y;
                }
                acc = warp_reduce_sum(acc);
                if (lane == r) {
                    score = acc + row_bias[r];
                }
            }
            const float m_new = fmaxf(m, warp_reduce_max(score));
            if (m_new != -INFINITY) {
                const float alpha = expf(m - m_new);   // 0 when m == -inf
                const float p     = lane < cnt ? expf(score - m_new) : 0.0f;
                l = l*alpha + warp_reduce_sum(p);
#pragma unroll
                for (int i = 0; i < NL; ++i) {
                    o[i].x *= alpha;
                    o[i].y *= alpha;
                }
                for (int r = 0; r < cnt; ++r) {
                    const float pr = __shfl_sync(0xffffffff, p, r);
#pragma unroll
                    for (int i = 0; i < NL; ++i) {
                        const float2 kv = __half22float2(k_s[r][lane + WARP_SIZE*i]);
                        o[i].x += pr*kv.x;
                        o[i].y += pr*kv.y;
                    }
                }
                m = m_new;
            }
        }
        __syncthreads();  // k_s, row lists and cursor are rewritten by the next tile
    }

    if (!active) {
        return;
    }

    if (a.n_split > 1) {
        // partial result of this range; k_dsv4_sparse_attn_combine adds the ranges and the sink
        float * pp = a.part + ((((size_t) s*a.T + t)*a.n_head + h)*a.n_split + split)*(D + 2);
        if (lane == 0) {
            pp[0] = m;
            pp[1] = l;
        }
#pragma unroll
        for (int i = 0; i < NL; ++i) {
            pp[2 + 2*lane + 64*i]     = o[i].x;
            pp[2 + 2*lane + 64*i + 1] = o[i].y;
        }
        return;
    }

    // the sink joins the softmax denominator only (as ggml_flash_attn_ext_add_sinks)
    if (a.sinks) {
        const float sv = a.sinks[h];
        if (sv > m) {
            const float ms = expf(m - sv);
#pragma unroll
            for (int i = 0; i < NL; ++i) {
                o[i].x *= ms;
                o[i].y *= ms;
            }
            l = l*ms + 1.0f;
            m = sv;
        } else {
            l += expf(sv - m);
        }
    }
    const float inv = l == 0.0f ? 0.0f : 1.0f/l;

    float * out = (float *) ((char *) a.dst + h*a.nbd1 + t*a.nbd2 + s*a.nbd3);
#pragma unroll
    for (int i = 0; i < NL; ++i) {
        *(float2 *) (out + 2*lane + 64*i) = make_float2(o[i].x*inv, o[i].y*inv);
    }
}

// Adds the n_split partial results of one (head, token, stream): one warp per block.
template <int D>
static __global__ void k_dsv4_sparse_attn_combine(const sattn_args a) {
    constexpr int NL = D/64;
    const int h    = blockIdx.x;
    const int t    = blockIdx.y;
    const int s    = blockIdx.z;
    const int lane = threadIdx.x;
    const float * pp = a.part + (((size_t) s*a.T + t)*a.n_head + h)*a.n_split*(D + 2);

    float m = -INFINITY;
    for (int j = 0; j < a.n_split; ++j) {
        m = fmaxf(m, pp[j*(D + 2)]);
    }
    float  l = 0.0f;
    float2 o[NL];
#pragma unroll
    for (int i = 0; i < NL; ++i) {
        o[i] = make_float2(0.0f, 0.0f);
    }
    if (m != -INFINITY) {
        for (int j = 0; j < a.n_split; ++j) {
            const float * pj = pp + j*(D + 2);
            const float   f  = expf(pj[0] - m);  // 0 for a range without rows
            l += f*pj[1];
#pragma unroll
            for (int i = 0; i < NL; ++i) {
                o[i].x += f*pj[2 + 2*lane + 64*i];
                o[i].y += f*pj[2 + 2*lane + 64*i + 1];
            }
        }
    }
    if (a.sinks) {
        const float sv = a.sinks[h];
        if (sv > m) {
            const float ms = expf(m - sv);
#pragma unroll
            for (int i = 0; i < NL; ++i) {
                o[i].x *= ms;
                o[i].y *= ms;
            }
            l = l*ms + 1.0f;
        } else {
            l += expf(sv - m);
        }
    }
    const float inv = l == 0.0f ? 0.0f : 1.0f/l;
    float * out = (float *) ((char *) a.dst + h*a.nbd1 + t*a.nbd2 + s*a.nbd3);
#pragma unroll
    for (int i = 0; i < NL; ++i) {
        *(float2 *) (out + 2*lane + 64*i) = make_float2(o[i].x*inv, o[i].y*inv);
    }
}

static const ggml_tensor * sattn_optional_src(const ggml_tensor * op, int param) {
    const int slot = ((const int32_t *) op->op_params)[param];
    return slot >= 5 && slot < GGML_MAX_SRC ? op->src[slot] : nullptr;
}

static int sattn_rows(const ggml_tensor * k, size_t * nb_row) {
    // [D, n, 1, S] as in the interface, or the cache view [D, 1, n, S]
    if (k->ne[1] == 1 && k->ne[2] != 1) {
        *nb_row = k->nb[2];
        return (int) k->ne[2];
    }
    *nb_row = k->nb[1];
    return (int) k->ne[1];
}

void ggml_cuda_op_dsv4_sparse_attn(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * q        = dst->src[0];
    const ggml_tensor * raw_k    = dst->src[1];
    const ggml_tensor * raw_mask = dst->src[2];
    const ggml_tensor * comp_k   = dst->src[3];
    const ggml_tensor * nvis     = dst->src[4];
    const ggml_tensor * idx      = sattn_optional_src(dst, 1);
    const ggml_tensor * sinks    = sattn_optional_src(dst, 2);

    GGML_ASSERT(q->type == GGML_TYPE_F32 && dst->type == GGML_TYPE_F32);
    GGML_ASSERT(raw_k->type == GGML_TYPE_F16 && comp_k->type == GGML_TYPE_F16 && raw_mask->type == GGML_TYPE_F16);
    GGML_ASSERT(nvis->type == GGML_TYPE_I32);
    GGML_ASSERT(!idx || idx->type == GGML_TYPE_I32);
    GGML_ASSERT(!sinks || sinks->type == GGML_TYPE_F32);

    const int D = (int) q->ne[0];

    sattn_args a = {};
    a.n_head = (int) q->ne[1];
    a.T      = (int) q->ne[2];
    const int S = (int) q->ne[3];
    memcpy(&a.scale, (const float *) dst->op_params + 0, sizeof(float));

    a.q = (const char *) q->data; a.nbq1 = q->nb[1]; a.nbq2 = q->nb[2]; a.nbq3 = q->nb[3];
    a.raw_k  = (const char *) raw_k->data;  a.n_raw  = sattn_rows(raw_k,  &a.nbr_row); a.nbr3 = raw_k->nb[3];
    a.comp_k = (const char *) comp_k->data; a.n_comp = sattn_rows(comp_k, &a.nbc_row); a.nbc3 = comp_k->nb[3];
    a.n_raw  = (int) std::min<int64_t>(a.n_raw, raw_mask->ne[0]);
    a.raw_mask = (const char *) raw_mask->data; a.nbm1 = raw_mask->nb[1]; a.nbm3 = raw_mask->nb[3];
    a.nem3 = (int) raw_mask->ne[3];
    a.idx  = idx ? (const char *) idx->data : nullptr;
    a.n_idx = idx ? (int) idx->ne[0] : 0;
    a.nbi1 = idx ? idx->nb[1] : 0;
    a.nbi3 = idx ? idx->nb[3] : 0;
    a.nvis = (const char *) nvis->data; a.nbv0 = nvis->nb[0]; a.nbv1 = nvis->nb[1];
    a.sinks = sinks ? (const float *) sinks->data : nullptr;

    a.dst = (float *) dst->data;
    if (dst->ne[0] == D && dst->ne[1] == a.n_head && dst->ne[2] == a.T) {
        a.nbd1 = dst->nb[1]; a.nbd2 = dst->nb[2]; a.nbd3 = dst->nb[3];
    } else {
        // build_attn_mha's 2D view [D*n_head, T*S]: the same bytes, contiguous
        GGML_ASSERT(ggml_is_contiguous(dst) && ggml_nelements(dst) == (int64_t) D*a.n_head*a.T*S);
        a.nbd1 = (size_t) D*sizeof(float);
        a.nbd2 = a.nbd1*a.n_head;
        a.nbd3 = a.nbd2*a.T;
    }

    // Small batches (decode) split each token's candidate sequence into ranges handled by separate
    // blocks, so that the GPU fills up; a combine kernel adds the ranges' partial softmax sums.
    const int n_hg      = (a.n_head + SATTN_WARPS - 1)/SATTN_WARPS;
    const int n_cand    = a.n_raw + (idx ? a.n_idx : a.n_comp);
    const int nsm       = ggml_cuda_info().devices[ggml_cuda_get_device()].nsm;
    const int want      = (2*nsm + n_hg*a.T*S - 1)/(n_hg*a.T*S);
    const int max_split = std::max(1, (n_cand + SATTN_MIN_SPLIT - 1)/SATTN_MIN_SPLIT);
    a.n_split   = std::max(1, std::min(want, max_split));
    a.split_len = (n_cand + a.n_split - 1)/a.n_split;
    a.split_len = (a.split_len + WARP_SIZE - 1)/WARP_SIZE*WARP_SIZE;
    ggml_cuda_pool_alloc<float> part(ctx.pool());
    if (a.n_split > 1) {
        a.part = part.alloc((size_t) a.n_split*a.n_head*a.T*S*(D + 2));
    }

    const dim3 grid(n_hg*a.n_split, a.T, S);
    const dim3 grid_combine(a.n_head, a.T, S);
    cudaStream_t stream = ctx.stream();
    switch (D) {
        case  64: k_dsv4_sparse_attn< 64><<<grid, SATTN_THREADS, 0, stream>>>(a); break;
        case 128: k_dsv4_sparse_attn<128><<<grid, SATTN_THREADS, 0, stream>>>(a); break;
        case 256: k_dsv4_sparse_attn<256><<<grid, SATTN_THREADS, 0, stream>>>(a); break;
        case 512: k_dsv4_sparse_attn<512><<<grid, SATTN_THREADS, 0, stream>>>(a); break;
        default: GGML_ABORT("dsv4_sparse_attn: head size %d not supported", D);
    }
    if (a.n_split > 1) {
        switch (D) {
            case  64: k_dsv4_sparse_attn_combine< 64><<<grid_combine, WARP_SIZE, 0, stream>>>(a); break;
            case 128: k_dsv4_sparse_attn_combine<128><<<grid_combine, WARP_SIZE, 0, stream>>>(a); break;
            case 256: k_dsv4_sparse_attn_combine<256><<<grid_combine, WARP_SIZE, 0, stream>>>(a); break;
            case 512: k_dsv4_sparse_attn_combine<512><<<grid_combine, WARP_SIZE, 0, stream>>>(a); break;
            default: GGML_ABORT("dsv4_sparse_attn: head size %d not supported", D);
        }
    }
}

bool ggml_cuda_dsv4_sparse_attn_supported(int device, const ggml_tensor * op) {
    GGML_UNUSED(device);
    const ggml_tensor * q        = op->src[0];
    const ggml_tensor * raw_k    = op->src[1];
    const ggml_tensor * raw_mask = op->src[2];
    const ggml_tensor * comp_k   = op->src[3];
    const ggml_tensor * nvis     = op->src[4];
    const ggml_tensor * idx      = sattn_optional_src(op, 1);
    const ggml_tensor * sinks    = sattn_optional_src(op, 2);
    if (!q || !raw_k || !raw_mask || !comp_k || !nvis) {
        return false;
    }
    const int64_t D = q->ne[0];
    if (D != 64 && D != 128 && D != 256 && D != 512) {
        return false;
    }
    if (q->type != GGML_TYPE_F32 || op->type != GGML_TYPE_F32 || raw_k->type != GGML_TYPE_F16 ||
        comp_k->type != GGML_TYPE_F16 || raw_mask->type != GGML_TYPE_F16 || nvis->type != GGML_TYPE_I32) {
        return false;
    }
    if ((idx && idx->type != GGML_TYPE_I32) || (sinks && (sinks->type != GGML_TYPE_F32 || sinks->ne[0] < q->ne[1]))) {
        return false;
    }
    if (raw_k->ne[0] != D || comp_k->ne[0] != D) {
        return false;
    }
    // rows are read as half2 / float2
    if (q->nb[0] != sizeof(float) || q->nb[1] % 8 != 0 || raw_k->nb[0] != sizeof(half) || comp_k->nb[0] != sizeof(half)) {
        return false;
    }
    for (const ggml_tensor * k : {raw_k, comp_k}) {
        if (k->nb[1] % 4 != 0 || k->nb[2] % 4 != 0 || (k->ne[1] != 1 && k->ne[2] != 1)) {
            return false;
        }
    }
    return true;
}
