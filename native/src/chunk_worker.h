// SPDX-License-Identifier: Apache-2.0
// AsyncWorkers: ProcessChunk (read/decompress/write one guest chunk off the JS thread) and
// ZeroRange. Each settles a promise; failures carry the core error's code.
#ifndef CDI_NATIVE_CHUNK_WORKER_H_
#define CDI_NATIVE_CHUNK_WORKER_H_

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "fd_io.h"
#include "qcow2.h"

namespace cdi {

// Base: a promise-settling AsyncWorker whose Execute catches core errors.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() final;
  virtual void Run() = 0;
  void OnError(const Napi::Error& e) override;
  Napi::Promise::Deferred deferred_;
  std::string code_ = qcow2::kConvertFailed;
};

struct ChunkJob {
  qcow2::Header header;
  int target_fd = -1;
  int direct_fd = -1;  // the target opened with O_DIRECT, when it could be
  bool sparse = true;
  uint64_t guest_offset = 0;
  uint64_t guest_length = 0;
  std::vector<qcow2::Extent> extents;
  int source_fd = -1;  // read with pread when >= 0, else from pieces
  std::vector<qcow2::BufferReader::Piece> pieces;
};

class ChunkWorker : public PromiseWorker {
 public:
  ChunkWorker(Napi::Env env, ChunkJob job, std::vector<Napi::ObjectReference> keep)
      : PromiseWorker(env), job_(std::move(job)), keep_(std::move(keep)) {}

 protected:
  void Run() override;
  void OnOK() override;

 private:
  ChunkJob job_;
  std::vector<Napi::ObjectReference> keep_;  // buffers referenced by job_.pieces
  qcow2::ChunkStats stats_;
};

class ZeroRangeWorker : public PromiseWorker {
 public:
  ZeroRangeWorker(Napi::Env env, int fd, uint64_t offset, uint64_t length)
      : PromiseWorker(env), fd_(fd), offset_(offset), length_(length) {}

 protected:
  void Run() override { qcow2::ZeroRange(fd_, offset_, length_); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  int fd_;
  uint64_t offset_;
  uint64_t length_;
};

// Writes buffers back to back at a file offset (the raw sink's batches), direct where it can.
class WriteAtWorker : public PromiseWorker {
 public:
  struct Part {
    const uint8_t* data;
    size_t len;
  };
  WriteAtWorker(Napi::Env env,
                int fd,
                int direct_fd,
                uint64_t offset,
                std::vector<Part> parts,
                std::vector<Napi::ObjectReference> keep)
      : PromiseWorker(env),
        fd_(fd),
        direct_fd_(direct_fd),
        offset_(offset),
        parts_(std::move(parts)),
        keep_(std::move(keep)) {}

 protected:
  void Run() override;
  void OnOK() override;

 private:
  int fd_;
  int direct_fd_;
  uint64_t offset_;
  std::vector<Part> parts_;
  std::vector<Napi::ObjectReference> keep_;  // the buffers behind parts_
};

// Extents as the Float64Array handed to JavaScript (5 numbers each), and back (validated).
Napi::Float64Array ExtentsToArray(Napi::Env env, const std::vector<qcow2::Extent>& ex);
std::vector<qcow2::Extent> ArrayToExtents(const Napi::Env& env, const Napi::Value& v);

// processChunk(chunk): queues a ChunkWorker for `header`'s image; returns its promise.
Napi::Value QueueChunk(const Napi::CallbackInfo& info, const qcow2::Header& header);

// writeAt(fd, directFd, buffers, offset): Promise<void>; directFd -1 for none.
Napi::Value WriteAtAsync(const Napi::CallbackInfo& info);

// zeroRange(fd, offset, length): Promise<void>
Napi::Value ZeroRangeAsync(const Napi::CallbackInfo& info);

}  // namespace cdi

#endif  // CDI_NATIVE_CHUNK_WORKER_H_
