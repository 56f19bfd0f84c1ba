// Longdesk: gather sparse attention for DeepSeek-V4 CSA/HCA layers (GGML_OP_DSV4_SPARSE_ATTN).
// Interface: engine/kernels (OPS-INTERFACE); what the kernel does and how it is launched: engine/kernels/GPU.md.
#pragma once

#include "common.cuh"

void ggml_cuda_op_dsv4_sparse_attn(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
bool ggml_cuda_dsv4_sparse_attn_supported(int device, const ggml_tensor * op);
