// SPDX-License-Identifier: Apache-2.0
#include "chunk_worker.h"

#include "napi_util.h"

#include <string>
#include <utility>
#include <vector>

namespace cdi {

// Values per extent in the Float64Array handed to JavaScript.
constexpr size_t kExtentFields = 5;

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
    if (f[2] > 3)
      throw Napi::RangeError::New(env, "invalid extent kind");
    out[i] = qcow2::Extent{uint64_t(f[0]), uint64_t(f[1]), uint32_t(f[2]), uint64_t(f[3]),
                           uint64_t(f[4])};
  }
  return out;
}

void PromiseWorker::Execute() {
  try {
    Run();
  } catch (const qcow2::Error& e) {
    code_ = e.code();
    SetError(e.what());
  } catch (const std::bad_alloc&) {
    SetError("out of memory");
  } catch (const std::exception& e) {
    SetError(e.what());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  deferred_.Reject(CodedError(Env(), code_, e.Message()).Value());
}

void ChunkWorker::Run() {
  qcow2::FdWriter writer(job_.target_fd, job_.direct_fd);
  if (job_.source_fd >= 0) {
    qcow2::FdReader reader(job_.source_fd, job_.header.file_size);
    stats_ =
        qcow2::ProcessChunk(job_.header, job_.guest_offset, job_.guest_length, job_.extents.data(),
                            job_.extents.size(), reader, writer, job_.sparse);
  } else {
    qcow2::BufferReader reader(std::move(job_.pieces));
    stats_ =
        qcow2::ProcessChunk(job_.header, job_.guest_offset, job_.guest_length, job_.extents.data(),
                            job_.extents.size(), reader, writer, job_.sparse);
  }
}

void ChunkWorker::OnOK() {
  Napi::Env env = Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dataBytesWritten", Napi::Number::New(env, double(stats_.data_bytes_written)));
  out.Set("zeroBytes", Napi::Number::New(env, double(stats_.zero_bytes)));
  out.Set("bytesRead", Napi::Number::New(env, double(stats_.bytes_read)));
  keep_.clear();
  deferred_.Resolve(out);
}

void WriteAtWorker::Run() {
  qcow2::FdWriter writer(fd_, direct_fd_);
  uint64_t pos = offset_;
  for (const Part& p : parts_) {
    writer.Write(p.data, p.len, pos);
    pos += p.len;
  }
}

void WriteAtWorker::OnOK() {
  keep_.clear();
  deferred_.Resolve(Env().Undefined());
}

Napi::Value WriteAtAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = int(ArgU64(info, 0, "fd"));
  if (info.Length() < 2 || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "directFd must be a number (-1 for none)");
  int direct_fd = info[1].As<Napi::Number>().Int32Value();
  if (info.Length() < 3 || !info[2].IsArray())
    throw Napi::TypeError::New(env, "buffers must be an array of Buffers");
  uint64_t offset = ArgU64(info, 3, "offset");
  Napi::Array buffers = info[2].As<Napi::Array>();
  std::vector<WriteAtWorker::Part> parts;
  std::vector<Napi::ObjectReference> keep;
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    Napi::Value b = buffers.Get(i);
    if (!b.IsBuffer())
      throw Napi::TypeError::New(env, "buffers must be an array of Buffers");
    Napi::Buffer<uint8_t> buf = b.As<Napi::Buffer<uint8_t>>();
    parts.push_back({buf.Data(), buf.Length()});
    keep.push_back(Napi::Persistent(buf.As<Napi::Object>()));
  }
  auto* worker = new WriteAtWorker(env, fd, direct_fd < 0 ? -1 : direct_fd, offset,
                                   std::move(parts), std::move(keep));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value ZeroRangeAsync(const Napi::CallbackInfo& info) {
  int fd = int(ArgU64(info, 0, "fd"));
  uint64_t offset = ArgU64(info, 1, "offset");
  uint64_t length = ArgU64(info, 2, "length");
  auto* worker = new ZeroRangeWorker(info.Env(), fd, offset, length);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value QueueChunk(const Napi::CallbackInfo& info, const qcow2::Header& header) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "expected a chunk object");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  ChunkJob job;
  job.header = header;
  job.target_fd = int(GetU64(o, "fd"));
  if (o.Has("directFd") && !o.Get("directFd").IsUndefined())
    job.direct_fd = int(GetU64(o, "directFd"));
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
