// Integer ops of the plan executor (ops.def, "integer ops"): validation + load-time parameter
// derivation (packed weights, LayerNorm/softmax/add parameters, GELU tables) and the run path,
// which is integer only and calls the qkernels. executor.cc delegates every op kind for which
// is_int_op() is true to the two functions below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "swinq/cpu.h"
#include "swinq/plan.h"

namespace swinq {

class ThreadPool;
struct IntOpState;  // executor_int.cc

bool is_int_op(OpKind k);

// Validates integer op `op_index` of `d` (tensors must already be validated) and derives its state
// from d.constants. Throws std::runtime_error "plan op #i name (node 'n'): <field> ...".
// sparse_a: PlanOptions::sparse_a.
std::shared_ptr<IntOpState> prepare_int_op(const PlanDesc& d, size_t op_index, bool sparse_a);

// Runs a prepared integer op. ptr[t] is the address of tensor t for this run. Never throws for a
// plan that prepare_int_op accepted.
void run_int_op(const PlanDesc& d, size_t op_index, const IntOpState& st, void* const* ptr, Isa isa, ThreadPool& pool);

// matmul_q kernel (exposed for tests): C[m,n] = Σ_k (a[m,k] − za)(op(b)[k,n] − zb) as int32 for
// one batch item; b is [K,N] (ldb = N) or, when trans_b, [N,K] (ldb = K). b_u8 selects u8 vs s8 b.
// K ≤ 32768 so no sum can overflow; scalar and AVX2 agree bit-exactly.
void matmul_u8x8_s32(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b, int64_t M,
                     int64_t K, int64_t N, int32_t* c, Isa isa);

}  // namespace swinq
