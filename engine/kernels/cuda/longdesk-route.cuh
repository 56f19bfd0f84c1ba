// Longdesk: DeepSeek-V4 MoE routing and hyper-connection gates (Op C), CUDA:
// GGML_OP_DSV4_MOE_TOPK, GGML_OP_DSV4_MOE_COMBINE, GGML_OP_DSV4_HC_GATES.
// Contracts: engine/kernels/README.md; launch shapes: engine/kernels/GPU.md.
#pragma once

#include "common.cuh"

void ggml_cuda_op_dsv4_moe_topk(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
void ggml_cuda_op_dsv4_moe_combine(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
void ggml_cuda_op_dsv4_hc_gates(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
bool ggml_cuda_dsv4_route_supported(int device, const ggml_tensor * op);
