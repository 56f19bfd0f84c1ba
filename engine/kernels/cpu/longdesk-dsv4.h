// Longdesk's CPU kernels for DeepSeek-V4 sparse attention (Op B), the fused lightning indexer +
// streaming top-k (Op A), and the fused MoE routing and hyper-connection gates (Op C). Copied
// into ggml/src/ggml-cpu/longdesk/ by packaging/llama_build.py; the core patch
// (engine/kernels/patches/00-core.patch) registers the ops and calls these entry points from
// ggml_compute_forward.
#pragma once

#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;

// forward passes (threads split the work by params->ith / params->nth; params->use_ref selects
// the plain reference branch)
void longdesk_dsv4_indexer_topk_forward(const struct ggml_compute_params * params, struct ggml_tensor * dst);
void longdesk_dsv4_sparse_attn_forward (const struct ggml_compute_params * params, struct ggml_tensor * dst);
void longdesk_dsv4_moe_topk_forward    (const struct ggml_compute_params * params, struct ggml_tensor * dst);
void longdesk_dsv4_moe_combine_forward (const struct ggml_compute_params * params, struct ggml_tensor * dst);
void longdesk_dsv4_hc_gates_forward    (const struct ggml_compute_params * params, struct ggml_tensor * dst);

// bytes of work buffer the op needs for n_threads threads
size_t longdesk_dsv4_indexer_topk_work_size(const struct ggml_tensor * dst, int n_threads);
size_t longdesk_dsv4_sparse_attn_work_size (const struct ggml_tensor * dst, int n_threads);
size_t longdesk_dsv4_moe_topk_work_size    (const struct ggml_tensor * dst, int n_threads);

#ifdef __cplusplus
}
#endif
