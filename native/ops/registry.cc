// The op table: one OpDef per line of ops.def, in OpKind order. An op listed in ops.def without
// its `extern const OpDef op_<name>` definition in native/ops/ fails the build (undefined symbol).
#include "swinq/op.h"

namespace swinq {

#define X(name, wire) extern const OpDef op_##name;
#include "swinq/ops.def"
#undef X

namespace {
const OpDef* const kOps[] = {
#define X(name, wire) &op_##name,
#include "swinq/ops.def"
#undef X
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == (size_t)OpKind::count_, "one OpDef per ops.def line");
}  // namespace

const OpDef& op_def(OpKind k) { return *kOps[(int)k]; }

}  // namespace swinq
