// The kernel transforms' shared check and thread-buffer result (kernel_transform.h).
#include "backend/cpu/kernel_transform.h"

#include <memory>
#include <utility>

#include "common/dtype.h"
#include "common/error.h"

namespace sdc::cpu {

void check_3x3_kernel(const TensorRef& w, const std::string& what) {
  if (w.shape.size() != 4 || w.shape[2] != 3 || w.shape[3] != 3)
    throw Error(w.source, what, "[Co, Ci, 3, 3]", shape_str(w.shape));
  if (!is_float(w.dtype))
    throw Error(w.source, what, "a float weight", std::string(dtype_name(w.dtype)));
}

TensorRef staged_tensor(std::vector<float>& staging, Shape shape, const std::string& source) {
  TensorRef t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = staging.data();
  t.nbytes = staging.size() * sizeof(float);
  t.owner = std::shared_ptr<const void>(staging.data(), [](const void*) {});  // not owned
  t.source = source;
  return t;
}

}  // namespace sdc::cpu
