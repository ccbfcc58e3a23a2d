// Descriptor keys and weight packing through oneDNN reorders.
#include "backend/cpu/dnnl_util.h"

#include <vector>

namespace sdc::cpu {

std::string md_key(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::string k =
      "dt" + std::to_string(int(d.data_type)) + " fk" + std::to_string(int(d.format_kind)) + " d";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.dims[i]) + ",";
  k += " pd";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.padded_dims[i]) + ",";
  if (d.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    k += " s";
    for (int i = 0; i < d.ndims; ++i) k += std::to_string(b.strides[i]) + ",";
    k += " ib";
    for (int i = 0; i < b.inner_nblks; ++i)
      k += std::to_string(b.inner_idxs[i]) + ":" + std::to_string(b.inner_blks[i]) + ",";
  }
  k += " x" + std::to_string(d.extra.flags) + "/" + std::to_string(d.extra.compensation_mask);
  return k;
}

std::shared_ptr<PackedWeight> pack_weight(const TensorRef& t, const dnnl::memory::desc& src_md,
                                          const dnnl::memory::desc& dst_md,
                                          const dnnl::engine& engine) {
  std::vector<float> values = t.to_f32();
  auto packed = std::make_shared<PackedWeight>(dst_md.get_size());
  dnnl::memory src(src_md, engine, values.data());
  dnnl::memory dst(dst_md, engine, packed->data());
  dnnl::stream stream(engine);
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return packed;
}

std::shared_ptr<PackedWeight> pack_f32(const TensorRef& t) {
  auto packed = std::make_shared<PackedWeight>(size_t(t.numel()) * sizeof(float));
  convert_to_f32(t.dtype, t.data, static_cast<float*>(packed->data()), size_t(t.numel()));
  return packed;
}

}  // namespace sdc::cpu
