// SPDX-License-Identifier: Apache-2.0
#include "qcow2_map.h"

#include <vector>

#include "chunk_worker.h"
#include "napi_util.h"

namespace cdi {

Napi::Function Qcow2Map::Init(Napi::Env env) {
  return DefineClass(env, "Qcow2Map",
                     {
                         InstanceMethod<&Qcow2Map::Info>("info"),
                         InstanceMethod<&Qcow2Map::ParseL1>("parseL1"),
                         InstanceMethod<&Qcow2Map::ClaimRefcountTable>("claimRefcountTable"),
                         InstanceMethod<&Qcow2Map::MapL2>("mapL2"),
                         InstanceMethod<&Qcow2Map::ProcessChunk>("processChunk"),
                     });
}

Qcow2Map::Qcow2Map(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Qcow2Map>(info) {
  Napi::Buffer<uint8_t> head = ArgBuffer(info, 0, "head");
  uint64_t file_size = ArgU64(info, 1, "fileSize");
  header_ =
      Guard(info.Env(), [&] { return qcow2::ParseHeader(head.Data(), head.Length(), file_size); });
}

Napi::Value Qcow2Map::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const qcow2::Header& h = header_;
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", double(h.version));
  o.Set("virtualSize", double(h.virtual_size));
  o.Set("clusterSize", double(h.cluster_size));
  o.Set("compressionType", h.compression_type == 0 ? "zlib" : "zstd");
  o.Set("extendedL2", h.extended_l2);
  o.Set("dirty", h.dirty);
  o.Set("corrupt", h.corrupt);
  o.Set("encrypted", h.crypt_method != 0);
  o.Set("snapshotCount", double(h.nb_snapshots));
  o.Set("l1Entries", double(h.l1_entries));
  o.Set("l1Offset", double(h.l1_offset));
  o.Set("l2Entries", double(h.l2_entries));
  o.Set("refcountTableOffset", double(h.refcount_table_offset));
  o.Set("refcountTableBytes", double(uint64_t(h.refcount_table_clusters) * h.cluster_size));
  o.Set("refcountOrder", double(h.refcount_order));
  if (h.has_backing_file)
    o.Set("backingFile", h.backing_file);
  if (h.has_external_data)
    o.Set("externalDataFile", h.external_data_file);
  if (h.refusal_code != nullptr) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("code", h.refusal_code);
    r.Set("message", h.refusal_message);
    o.Set("refusal", r);
  }
  return o;
}

Napi::Value Qcow2Map::ParseL1(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 0, "l1");
  std::vector<uint64_t> l2 = Guard(info.Env(), [&] {
    std::vector<uint64_t> offsets = qcow2::ParseL1(header_, buf.Data(), buf.Length());
    qcow2::ClaimTables(header_, offsets, claims_);
    return offsets;
  });
  Napi::Float64Array arr = Napi::Float64Array::New(info.Env(), l2.size());
  for (size_t i = 0; i < l2.size(); i++)
    arr[i] = double(l2[i]);
  return arr;
}

// claimRefcountTable(table): claims the refcount blocks the table names (overlaps throw).
Napi::Value Qcow2Map::ClaimRefcountTable(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 0, "refcountTable");
  Guard(info.Env(), [&] {
    qcow2::ClaimRefcountBlocks(header_, buf.Data(), buf.Length(), claims_);
    return 0;
  });
  return info.Env().Undefined();
}

Napi::Value Qcow2Map::MapL2(const Napi::CallbackInfo& info) {
  uint64_t index = ArgU64(info, 0, "l1Index");
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, "l2");
  if (index >= header_.l1_entries) {
    throw Napi::RangeError::New(info.Env(), "l1 index out of range");
  }
  std::vector<qcow2::Extent> ex;
  Guard(info.Env(), [&] {
    qcow2::MapL2(header_, index, buf.Data(), buf.Length(), ex, &claims_);
    return 0;
  });
  return ExtentsToArray(info.Env(), ex);
}

Napi::Value Qcow2Map::ProcessChunk(const Napi::CallbackInfo& info) {
  return QueueChunk(info, header_);
}

}  // namespace cdi
