// SPDX-License-Identifier: Apache-2.0
#include "qcow2_map.h"

#include <vector>

#include "chunk_worker.h"
#include "napi_util.h"

namespace cdi {
namespace {

// Values per extent in the Float64Array handed to JavaScript.
constexpr size_t kExtentFields = 5;

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string("expected a Buffer for ") + what);
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// Runs a core call, turning qcow2::Error into a JS error with a code.
template <typename F>
auto Guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const qcow2::Error& e) {
    throw CodedError(env, e.code(), e.what());
  }
}

Napi::Float64Array ExtentsToArray(Napi::Env env, const std::vector<qcow2::Extent>& ex) {
  Napi::Float64Array arr = Napi::Float64Array::New(env, ex.size() * kExtentFields);
  for (size_t i = 0; i < ex.size(); i++) {
    arr[i * kExtentFields + 0] = double(ex[i].guest);
    arr[i * kExtentFields + 1] = double(ex[i].length);
    arr[i * kExtentFields + 2] = double(ex[i].kind);
    arr[i * kExtentFields + 3] = double(ex[i].host);
    arr[i * kExtentFields + 4] = double(ex[i].host_len);
  }
  return arr;
}

std::vector<qcow2::Extent> ArrayToExtents(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "expected a Float64Array of extents");
  }
  Napi::Float64Array arr = v.As<Napi::Float64Array>();
  if (arr.ElementLength() % kExtentFields != 0) {
    throw Napi::RangeError::New(env, "extent array length is not a multiple of 5");
  }
  std::vector<qcow2::Extent> out(arr.ElementLength() / kExtentFields);
  for (size_t i = 0; i < out.size(); i++) {
    double f[kExtentFields];
    for (size_t k = 0; k < kExtentFields; k++) {
      f[k] = arr[i * kExtentFields + k];
      if (!(f[k] >= 0) || f[k] > 9007199254740992.0) {
        throw Napi::RangeError::New(env, "invalid extent field");
      }
    }
    if (f[2] > 2)
      throw Napi::RangeError::New(env, "invalid extent kind");
    out[i] = qcow2::Extent{uint64_t(f[0]), uint64_t(f[1]), uint32_t(f[2]), uint64_t(f[3]),
                           uint64_t(f[4])};
  }
  return out;
}

}  // namespace

Napi::Function Qcow2Map::Init(Napi::Env env) {
  return DefineClass(env, "Qcow2Map",
                     {
                         InstanceMethod<&Qcow2Map::Info>("info"),
                         InstanceMethod<&Qcow2Map::ParseL1>("parseL1"),
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
  std::vector<uint64_t> l2 =
      Guard(info.Env(), [&] { return qcow2::ParseL1(header_, buf.Data(), buf.Length()); });
  Napi::Float64Array arr = Napi::Float64Array::New(info.Env(), l2.size());
  for (size_t i = 0; i < l2.size(); i++)
    arr[i] = double(l2[i]);
  return arr;
}

Napi::Value Qcow2Map::MapL2(const Napi::CallbackInfo& info) {
  uint64_t index = ArgU64(info, 0, "l1Index");
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, "l2");
  if (index >= header_.l1_entries) {
    throw Napi::RangeError::New(info.Env(), "l1 index out of range");
  }
  std::vector<qcow2::Extent> ex;
  Guard(info.Env(), [&] {
    qcow2::MapL2(header_, index, buf.Data(), buf.Length(), ex);
    return 0;
  });
  return ExtentsToArray(info.Env(), ex);
}

Napi::Value Qcow2Map::ProcessChunk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "expected a chunk object");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  ChunkJob job;
  job.header = header_;
  job.target_fd = int(GetU64(o, "fd"));
  job.sparse = o.Get("sparse").ToBoolean();
  job.guest_offset = GetU64(o, "guestOffset");
  job.guest_length = GetU64(o, "guestLength");
  if (job.guest_length > (64ull << 20)) {
    throw Napi::RangeError::New(env, "chunk longer than 64 MiB");
  }
  job.extents = ArrayToExtents(env, o.Get("extents"));
  std::vector<Napi::ObjectReference> keep;
  if (o.Has("sourceFd") && !o.Get("sourceFd").IsUndefined()) {
    job.source_fd = int(GetU64(o, "sourceFd"));
  } else {
    Napi::Value pv = o.Get("pieces");
    Napi::Value ov = o.Get("pieceOffsets");
    if (!pv.IsArray() || !ov.IsArray()) {
      throw Napi::TypeError::New(env, "expected sourceFd or pieces and pieceOffsets");
    }
    Napi::Array pieces = pv.As<Napi::Array>();
    Napi::Array offsets = ov.As<Napi::Array>();
    if (pieces.Length() != offsets.Length()) {
      throw Napi::RangeError::New(env, "pieces and pieceOffsets differ in length");
    }
    for (uint32_t i = 0; i < pieces.Length(); i++) {
      Napi::Value b = pieces.Get(i);
      Napi::Value off = offsets.Get(i);
      if (!b.IsBuffer() || !off.IsNumber())
        throw Napi::TypeError::New(env, "invalid piece");
      Napi::Buffer<uint8_t> buf = b.As<Napi::Buffer<uint8_t>>();
      double d = off.As<Napi::Number>().DoubleValue();
      if (!(d >= 0) || d > 9007199254740992.0)
        throw Napi::RangeError::New(env, "invalid offset");
      job.pieces.push_back({uint64_t(d), buf.Data(), buf.Length()});
      keep.push_back(Napi::Persistent(buf.As<Napi::Object>()));
    }
  }
  auto* worker = new ChunkWorker(env, std::move(job), std::move(keep));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace cdi
