// SPDX-License-Identifier: Apache-2.0
#include "chunk_worker.h"

#include "napi_util.h"

namespace cdi {

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
  qcow2::FdWriter writer(job_.target_fd);
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

Napi::Value ZeroRangeAsync(const Napi::CallbackInfo& info) {
  int fd = int(ArgU64(info, 0, "fd"));
  uint64_t offset = ArgU64(info, 1, "offset");
  uint64_t length = ArgU64(info, 2, "length");
  auto* worker = new ZeroRangeWorker(info.Env(), fd, offset, length);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace cdi
