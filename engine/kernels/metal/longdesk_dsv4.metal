// Longdesk: DeepSeek-V4 kernels for ggml-metal -- UNTESTED: nothing on Longdesk's build machines
// compiles Metal. Built only with LONGDESK_METAL_OPS=on (patch 20-metal.patch). What each kernel
// does and how it is launched: engine/kernels/GPU.md. The CUDA kernels of the same ops
// (engine/kernels/cuda/) follow the same plan and are compile-checked in CI.

#include "common.h"

// ---------------------------------------------------------------------------------------------
// Block-local running top-k in threadgroup memory (256 threads), as in the CUDA kernel: a pool of
// (value, index) pairs with a threshold, cut back to top_k by a 4-pass radix select on the float
// bits when the next offer might not fit. Threadgroup memory on Apple GPUs is 32 KB, so the pool
// is top_k + 256 entries per buffer and top_k <= 512.

#define LD_TG      256
#define LD_NSG     (LD_TG/32)

struct ld_pool {
    threadgroup float      * val0;
    threadgroup float      * val1;
    threadgroup int        * idx0;
    threadgroup int        * idx1;
    threadgroup atomic_uint * hist;   // 256
    threadgroup atomic_int  * cnt;    // [0] count, [1] ties taken, [2] gt taken
    threadgroup int        * misc;    // [0] cur, [1] digit, [2] above
    threadgroup float      * thr;
    threadgroup int        * wsum;    // 8
    int cap;
    int top_k;
};

static inline uint ld_key(float f) {
    const uint u = as_type<uint>(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float ld_unkey(uint k) {
    return as_type<float>((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

static void ld_pool_reduce(thread ld_pool & p, ushort tid) {
    const int n   = atomic_load_explicit(&p.cnt[0], memory_order_relaxed);
    const int cur = p.misc[0];
    if (n <= p.top_k) {
        return;
    }
    threadgroup float * v = cur ? p.val1 : p.val0;
    threadgroup int   * x = cur ? p.idx1 : p.idx0;

    uint prefix = 0;
    int  want   = p.top_k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        atomic_store_explicit(&p.hist[tid], 0u, memory_order_relaxed);
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (int i = tid; i < n; i += LD_TG) {
            const uint key = ld_key(v[i]);
            if (shift == 24 || (key >> (shift + 8)) == (prefix >> (shift + 8))) {
                atomic_fetch_add_explicit(&p.hist[(key >> shift) & 0xffu], 1u, memory_order_relaxed);
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        const int b  = 255 - tid;
        const int hb = (int) atomic_load_explicit(&p.hist[b], memory_order_relaxed);
        int incl = simd_prefix_inclusive_sum(hb);
        if (tid % 32 == 31) {
            p.wsum[tid/32] = incl;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (int w = 0; w < tid/32; ++w) {
            incl += p.wsum[w];
        }
        const int above = incl - hb;
        if (hb > 0 && incl >= want && above < want) {
            p.misc[1] = b;
            p.misc[2] = above;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        prefix |= ((uint) p.misc[1]) << shift;
        want   -= p.misc[2];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const int n_gt = p.top_k - want;
    if (tid == 0) {
        atomic_store_explicit(&p.cnt[1], 0, memory_order_relaxed);
        atomic_store_explicit(&p.cnt[2], 0, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    threadgroup float * vo = cur ? p.val0 : p.val1;
    threadgroup int   * xo = cur ? p.idx0 : p.idx1;
    for (int i = tid; i < n; i += LD_TG) {
        const uint key = ld_key(v[i]);
        int slot = -1;
        if (key > prefix) {
            slot = atomic_fetch_add_explicit(&p.cnt[2], 1, memory_order_relaxed);
        } else if (key == prefix) {
            const int e = atomic_fetch_add_explicit(&p.cnt[1], 1, memory_order_relaxed);
            slot = e < want ? n_gt + e : -1;
        }
        if (slot >= 0) {
            vo[slot] = v[i];
            xo[slot] = x[i];
        }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        atomic_store_explicit(&p.cnt[0], p.top_k, memory_order_relaxed);
        p.misc[0] = cur ^ 1;
        p.thr[0]  = ld_unkey(prefix);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
}

// every thread offers at most one candidate; at most `per_round` threads offer
static void ld_pool_offer(thread ld_pool & p, ushort tid, bool has, float value, int index, int per_round) {
    if (has && value > p.thr[0]) {
        const int slot = atomic_fetch_add_explicit(&p.cnt[0], 1, memory_order_relaxed);
        if (p.misc[0]) { p.val1[slot] = value; p.idx1[slot] = index; }
        else           { p.val0[slot] = value; p.idx0[slot] = index; }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (atomic_load_explicit(&p.cnt[0], memory_order_relaxed) > p.cap - per_round) {
        ld_pool_reduce(p, tid);
    }
}

// threadgroup memory of the pool, in bytes
#define LD_POOL_BYTES(top_k) (((top_k) + LD_TG)*2*8 + 256*4 + 4*4 + 4*4 + 4 + 8*4)

static ld_pool ld_pool_init(threadgroup char * mem, int top_k, ushort tid) {
    ld_pool p;
    p.top_k = top_k;
    p.cap   = top_k + LD_TG;
    p.val0  = (threadgroup float *) mem;
    p.val1  = p.val0 + p.cap;
    p.idx0  = (threadgroup int *) (p.val1 + p.cap);
    p.idx1  = p.idx0 + p.cap;
    p.hist  = (threadgroup atomic_uint *) (p.idx1 + p.cap);
    p.cnt   = (threadgroup atomic_int *) (p.hist + 256);
    p.misc  = (threadgroup int *) (p.cnt + 4);
    p.thr   = (threadgroup float *) (p.misc + 4);
    p.wsum  = (threadgroup int *) (p.thr + 1);
    if (tid == 0) {
        atomic_store_explicit(&p.cnt[0], 0, memory_order_relaxed);
        p.misc[0] = 0;
        p.thr[0]  = -INFINITY;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Op A: kernel_dsv4_indexer_topk_<k type>. One threadgroup (8 simdgroups) per (token, stream).
// Simdgroup s holds the queries of heads s, s+8, ... in registers (lane: dims 4*lane..4*lane+3),
// the threadgroup stages 32 keys at a time as F32 (converted once), each simdgroup scores them for
// its heads (simd_sum per head and key), the relu-weighted head sums are added across simdgroups
// and offered to the pool. Keys at or past n_vis(t) are not read.

#define LD_IK_NK 32   // keys per chunk

template <typename block_q, short nl, void (*dequantize_func)(device const block_q *, short, thread float4x4 &)>
kernel void kernel_dsv4_indexer_topk(
        constant ggml_metal_kargs_dsv4_indexer_topk & args,
        device const char * q,
        device const char * k,
        device const char * w,
        device const char * nvis,
        device       char * dst,
        threadgroup  char * shmem [[threadgroup(0)]],
        uint3  tgpig[[threadgroup_position_in_grid]],
        ushort tid  [[thread_index_in_threadgroup]],
        ushort lane [[thread_index_in_simdgroup]],
        ushort sg   [[simdgroup_index_in_threadgroup]]) {
    const int t = tgpig.x;
    const int s = tgpig.y;
    const int D = args.D;              // multiple of 16, <= 128: lane holds dims 4*lane .. 4*lane+3

    threadgroup float * k_s  = (threadgroup float *) shmem;                // [NK][D]
    threadgroup float * part = k_s + LD_IK_NK*D;                           // [8][NK]
    ld_pool pool = ld_pool_init((threadgroup char *) (part + LD_NSG*LD_IK_NK), args.top_k, tid);

    const int nv = min(*(device const int *) (nvis + t*args.nbv0 + s*args.nbv1), args.n_kv);

    float4 qr[8];
    float  wr[8];
    for (short i = 0; i < 8; ++i) {
        const int h = sg + 8*i;
        const bool ok = h < args.n_head && 4*lane < D;
        qr[i] = ok ? *(device const float4 *) (q + h*args.nbq1 + t*args.nbq2 + s*args.nbq3 + 16*lane) : float4(0.0f);
        wr[i] = h < args.n_head ? *(device const float *) (w + h*args.nbw0 + t*args.nbw1 + s*args.nbw3) : 0.0f;
    }

    for (int c0 = 0; c0 < nv; c0 += LD_IK_NK) {
        // stage the chunk as F32: 16 values per work item (one float4x4 of the dequantizer)
        const int n16 = LD_IK_NK*D/16;
        for (int e = tid; e < n16; e += LD_TG) {
            const int r  = e / (D/16);
            const int c  = e % (D/16);
            float4x4 f = float4x4(0.0f);
            if (c0 + r < nv) {
                device const block_q * row = (device const block_q *) (k + (c0 + r)*args.nbk_row + s*args.nbk3);
                dequantize_func(row + c/nl, c%nl, f);
            }
            for (short j = 0; j < 4; ++j) {
                *(threadgroup float4 *) (k_s + r*D + 16*c + 4*j) = f[j];
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);

        float my = 0.0f;   // lane r: this simdgroup's relu-weighted sum for key r of the chunk
        for (short r = 0; r < LD_IK_NK; ++r) {
            const float4 kv = 4*lane < D ? *(threadgroup const float4 *) (k_s + r*D + 4*lane) : float4(0.0f);
            float sum = 0.0f;
            for (short i = 0; i < 8; ++i) {
                const float d = simd_sum(dot(qr[i], kv));
                sum += wr[i]*max(d, 0.0f);
            }
            if (lane == r) {
                my = sum;
            }
        }
        part[sg*LD_IK_NK + lane] = my;
        threadgroup_barrier(mem_flags::mem_threadgroup);

        float score = 0.0f;
        if (tid < LD_IK_NK) {
            for (short g = 0; g < LD_NSG; ++g) {
                score += part[g*LD_IK_NK + tid];
            }
        }
        ld_pool_offer(pool, tid, tid < LD_IK_NK && c0 + tid < nv, score, c0 + tid, LD_IK_NK);
    }

    threadgroup_barrier(mem_flags::mem_threadgroup);
    ld_pool_reduce(pool, tid);
    const int n = atomic_load_explicit(&pool.cnt[0], memory_order_relaxed);
    threadgroup int * ids = pool.misc[0] ? pool.idx1 : pool.idx0;
    device int * out = (device int *) (dst + t*args.nbd1 + s*args.nbd3);
    for (int i = tid; i < args.top_k; i += LD_TG) {
        out[i] = i < n ? ids[i] : -1;
    }
}

typedef decltype(kernel_dsv4_indexer_topk<half4x4, 1, dequantize_f16>) kernel_dsv4_indexer_topk_t;

template [[host_name("kernel_dsv4_indexer_topk_f32")]]  kernel kernel_dsv4_indexer_topk_t kernel_dsv4_indexer_topk<float4x4,   1, dequantize_f32>;
template [[host_name("kernel_dsv4_indexer_topk_f16")]]  kernel kernel_dsv4_indexer_topk_t kernel_dsv4_indexer_topk<half4x4,    1, dequantize_f16>;
template [[host_name("kernel_dsv4_indexer_topk_q8_0")]] kernel kernel_dsv4_indexer_topk_t kernel_dsv4_indexer_topk<block_q8_0, 2, dequantize_q8_0>;

// ---------------------------------------------------------------------------------------------
// Op B: kernel_dsv4_sparse_attn_<D>. One threadgroup per (8 heads, token, stream); simdgroup = head.
// Simdgroup 0 compacts the next candidate rows (finite raw rows, then selected compressed rows)
// into a list of 16, the threadgroup stages those rows (F16) once, every head consumes them with
// an online softmax; lane l owns dims 2l, 2l+1 (+64 i). The sink joins the denominator.

#define LD_SA_TILE 16

template <short D>
kernel void kernel_dsv4_sparse_attn(
        constant ggml_metal_kargs_dsv4_sparse_attn & args,
        device const char * q,
        device const char * raw_k,
        device const char * raw_mask,
        device const char * comp_k,
        device const char * idx,
        device const char * nvis,
        device const char * sinks,
        device       char * dst,
        threadgroup  char * shmem [[threadgroup(0)]],
        uint3  tgpig[[threadgroup_position_in_grid]],
        ushort tid  [[thread_index_in_threadgroup]],
        ushort lane [[thread_index_in_simdgroup]],
        ushort sg   [[simdgroup_index_in_threadgroup]]) {
    constexpr short NL = D/64;
    threadgroup half2 * k_s   = (threadgroup half2 *) shmem;                        // [TILE][D/2]
    threadgroup int   * rows  = (threadgroup int *) (k_s + LD_SA_TILE*(D/2));      // row id, raw: -1-j
    threadgroup float * bias  = (threadgroup float *) (rows + LD_SA_TILE);
    threadgroup int   * cur   = (threadgroup int *) (bias + LD_SA_TILE);            // [0] raw, [1] comp, [2] count

    const int h = tgpig.x*8 + sg;
    const int t = tgpig.y;
    const int s = tgpig.z;
    const bool active = h < args.n_head;

    const int nv = min(*(device const int *) (nvis + t*args.nbv0 + s*args.nbv1), args.n_comp);
    const int n_cand = args.has_idx ? args.n_idx : max(nv, 0);
    device const half * mrow = (device const half *) (raw_mask + t*args.nbm1 + (s % args.nem3)*args.nbm3);
    device const int  * irow = (device const int *) (idx + t*args.nbi1 + s*args.nbi3);

    float2 qr[NL];
    float2 o[NL];
    device const float * qh = (device const float *) (q + (active ? h : 0)*args.nbq1 + t*args.nbq2 + s*args.nbq3);
    for (short i = 0; i < NL; ++i) {
        qr[i] = float2(qh[2*lane + 64*i], qh[2*lane + 64*i + 1])*args.scale;
        o[i]  = float2(0.0f);
    }
    float m = -INFINITY;
    float l = 0.0f;

    if (tid == 0) {
        cur[0] = 0;
        cur[1] = 0;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);

    while (true) {
        if (sg == 0) {
            int cnt = 0;
            int rp  = cur[0];
            int cp  = cur[1];
            // 16 candidates per step (lanes 16..31 idle) so that one step always fits the tile
            while (rp < args.n_raw) {
                const int j = rp + lane;
                const float b = (lane < 16 && j < args.n_raw) ? (float) mrow[j] : -INFINITY;
                const bool ok = b != -INFINITY;
                const int nb = simd_sum(ok ? 1 : 0);
                if (cnt + nb > LD_SA_TILE) {
                    break;
                }
                const int pos = cnt + simd_prefix_exclusive_sum(ok ? 1 : 0);
                if (ok) {
                    rows[pos] = -1 - j;
                    bias[pos] = b;
                }
                cnt += nb;
                rp  += 16;
            }
            if (rp >= args.n_raw) {
                while (cp < n_cand) {
                    const int i = cp + lane;
                    int r = -1;
                    if (lane < 16 && i < n_cand) {
                        r = args.has_idx ? irow[i] : i;
                    }
                    const bool ok = r >= 0 && r < nv;
                    const int nb = simd_sum(ok ? 1 : 0);
                    if (cnt + nb > LD_SA_TILE) {
                        break;
                    }
                    const int pos = cnt + simd_prefix_exclusive_sum(ok ? 1 : 0);
                    if (ok) {
                        rows[pos] = r;
                        bias[pos] = 0.0f;
                    }
                    cnt += nb;
                    cp  += 16;
                }
            }
            if (lane == 0) {
                cur[0] = rp;
                cur[1] = cp;
                cur[2] = cnt;
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        const int cnt = cur[2];
        if (cnt == 0) {
            break;
        }
        for (int e = tid; e < cnt*(D/2); e += LD_TG) {
            const int r  = e / (D/2);
            const int c  = e % (D/2);
            const int id = rows[r];
            device const half2 * src = id < 0
                ? (device const half2 *) (raw_k  + (-1 - id)*args.nbr_row + s*args.nbr3)
                : (device const half2 *) (comp_k + id*args.nbc_row + s*args.nbc3);
            k_s[r*(D/2) + c] = src[c];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);

        if (active) {
            float score = -INFINITY;
            for (int r = 0; r < cnt; ++r) {
                float acc = 0.0f;
                for (short i = 0; i < NL; ++i) {
                    const float2 kv = float2(k_s[r*(D/2) + lane + 32*i]);
                    acc += dot(qr[i], kv);
                }
                acc = simd_sum(acc);
                if (lane == r) {
                    score = acc + bias[r];
                }
            }
            const float m_new = max(m, simd_max(score));
            if (m_new != -INFINITY) {
                const float alpha = exp(m - m_new);
                const float p = lane < cnt ? exp(score - m_new) : 0.0f;
                l = l*alpha + simd_sum(p);
                for (short i = 0; i < NL; ++i) {
                    o[i] *= alpha;
                }
                for (int r = 0; r < cnt; ++r) {
                    const float pr = simd_shuffle(p, (ushort) r);
                    for (short i = 0; i < NL; ++i) {
                        o[i] += pr*float2(k_s[r*(D/2) + lane + 32*i]);
                    }
                }
                m = m_new;
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }

    if (!active) {
        return;
    }
    if (args.has_sinks) {
        const float sv = ((device const float *) sinks)[h];
        if (sv > m) {
            const float ms = exp(m - sv);
            for (short i = 0; i < NL; ++i) {
                o[i] *= ms;
            }
            l = l*ms + 1.0f;
        } else {
            l += exp(sv - m);
        }
    }
    const float inv = l == 0.0f ? 0.0f : 1.0f/l;
    device float * out = (device float *) (dst + h*args.nbd1 + t*args.nbd2 + s*args.nbd3);
    for (short i = 0; i < NL; ++i) {
        out[2*lane + 64*i]     = o[i].x*inv;
        out[2*lane + 64*i + 1] = o[i].y*inv;
    }
}

typedef decltype(kernel_dsv4_sparse_attn<512>) kernel_dsv4_sparse_attn_t;

template [[host_name("kernel_dsv4_sparse_attn_64")]]  kernel kernel_dsv4_sparse_attn_t kernel_dsv4_sparse_attn<64>;
template [[host_name("kernel_dsv4_sparse_attn_128")]] kernel kernel_dsv4_sparse_attn_t kernel_dsv4_sparse_attn<128>;
template [[host_name("kernel_dsv4_sparse_attn_256")]] kernel kernel_dsv4_sparse_attn_t kernel_dsv4_sparse_attn<256>;
template [[host_name("kernel_dsv4_sparse_attn_512")]] kernel kernel_dsv4_sparse_attn_t kernel_dsv4_sparse_attn<512>;

// ---------------------------------------------------------------------------------------------
// Router (the SOFTPLUS -> SQRT -> [ADD bias] -> ARGSORT -> VIEW -> GET_ROWS -> [SUM_ROWS -> CLAMP
// -> DIV] -> [SCALE] chain, and the hash-routed variant whose ids come from get_rows(tid2eid,
// tokens)): one simdgroup per token. Lane e holds experts e, e+32, ...; probs = sqrt(softplus(x));
// selection = probs + bias; top n_used by repeated simd_max (n_used <= 8, ties: lowest expert id);
// weights = probs of the chosen experts, optionally / max(sum, clamp_min), times scale.
// Writes ids I32 [n_used, T] and weights F32 [1, n_used, T].

kernel void kernel_dsv4_router(
        constant ggml_metal_kargs_dsv4_router & args,
        device const char * logits,
        device const char * bias,
        device const char * hash_ids,
        device       char * ids_out,
        device       char * w_out,
        uint   tgpig[[threadgroup_position_in_grid]],
        ushort lane [[thread_index_in_simdgroup]],
        ushort sg   [[simdgroup_index_in_threadgroup]]) {
    const int t = tgpig*args.nsg + sg;
    if (t >= args.n_tokens) {
        return;
    }
    constexpr short MAXE = 8;  // experts per lane: n_expert <= 256
    float p[MAXE];
    float sel[MAXE];
    device const float * lrow = (device const float *) (logits + t*args.nb_l1);
    for (short i = 0; i < MAXE; ++i) {
        const int e = lane + 32*i;
        if (e < args.n_expert) {
            const float x  = lrow[e];
            const float sp = x > 20.0f ? x : log(1.0f + exp(x));   // softplus (ggml's threshold)
            p[i]   = sqrt(sp);
            sel[i] = args.has_bias ? p[i] + ((device const float *) bias)[e] : p[i];
        } else {
            p[i]   = 0.0f;
            sel[i] = -INFINITY;
        }
    }
    int   chosen[8];
    float wsel[8];
    float wsum = 0.0f;
    for (int j = 0; j < args.n_used; ++j) {
        int e_j;
        if (args.has_hash) {
            e_j = ((device const int *) (hash_ids + t*args.nb_h1))[j];
        } else {
            float best = -INFINITY; int be = 0x7fffffff;
            for (short i = 0; i < MAXE; ++i) {
                const int e = lane + 32*i;
                if (sel[i] > best || (sel[i] == best && e < be)) { best = sel[i]; be = e; }
            }
            const float gbest = simd_max(best);
            e_j = simd_min(best == gbest ? be : 0x7fffffff);
            for (short i = 0; i < MAXE; ++i) {
                if (lane + 32*i == e_j) { sel[i] = -INFINITY; }
            }
        }
        // probability of e_j, from the lane that holds it
        float pv = 0.0f;
        for (short i = 0; i < MAXE; ++i) {
            if (lane + 32*i == e_j) { pv = p[i]; }
        }
        pv = simd_sum(pv);
        chosen[j] = e_j;
        wsel[j]   = pv;
        wsum     += pv;
    }
    const float norm = args.norm ? 1.0f/max(wsum, args.clamp_min) : 1.0f;
    if (lane == 0) {
        device int   * io = (device int   *) (ids_out + t*args.nb_i1);
        device float * wo = (device float *) (w_out   + t*args.nb_w2);
        for (int j = 0; j < args.n_used; ++j) {
            io[j] = chosen[j];
            wo[j] = wsel[j]*norm*args.scale;
        }
    }
}
