// Longdesk: fused lightning indexer + causal bound + top-k for DeepSeek-V4 (GGML_OP_DSV4_INDEXER_TOPK).
// Interface: engine/kernels (OPS-INTERFACE); what the kernel does and how it is launched: engine/kernels/GPU.md.
#pragma once

#include "common.cuh"

void ggml_cuda_op_dsv4_indexer_topk(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
bool ggml_cuda_dsv4_indexer_topk_supported(int device, const ggml_tensor * op);
