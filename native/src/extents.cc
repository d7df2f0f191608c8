// SPDX-License-Identifier: Apache-2.0
// DataExtents: where a file (or device) holds data, by lseek(SEEK_DATA/SEEK_HOLE), off the JS
// thread. A clone source sends only these ranges; everything else reads as zeros.
#include "extents.h"

#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "chunk_worker.h"
#include "napi_util.h"

namespace cdi {
namespace {

class DataExtentsWorker : public PromiseWorker {
 public:
  DataExtentsWorker(Napi::Env env, int fd, uint64_t start, uint64_t end, uint64_t max_extents)
      : PromiseWorker(env), fd_(fd), start_(start), end_(end), max_(max_extents) {}

 protected:
  void Run() override {
    uint64_t pos = start_;
    while (pos < end_ && pairs_.size() / 2 < max_) {
      off_t data = lseek(fd_, off_t(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO)
          break;  // no data after pos
        if (errno == EINVAL || errno == EOPNOTSUPP) {
          // A device or filesystem without hole reporting: all of it is data.
          pairs_.push_back(double(pos));
          pairs_.push_back(double(end_ - pos));
          break;
        }
        throw qcow2::Error(qcow2::kConvertFailed,
                           std::string("lseek(SEEK_DATA): ") + std::strerror(errno));
      }
      if (uint64_t(data) >= end_)
        break;
      off_t hole = lseek(fd_, data, SEEK_HOLE);
      if (hole < 0) {
        throw qcow2::Error(qcow2::kConvertFailed,
                           std::string("lseek(SEEK_HOLE): ") + std::strerror(errno));
      }
      uint64_t stop = uint64_t(hole) < end_ ? uint64_t(hole) : end_;
      pairs_.push_back(double(data));
      pairs_.push_back(double(stop - uint64_t(data)));
      pos = stop;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Float64Array out = Napi::Float64Array::New(env, pairs_.size());
    for (size_t i = 0; i < pairs_.size(); i++)
      out[i] = pairs_[i];
    deferred_.Resolve(out);
  }

 private:
  int fd_;
  uint64_t start_;
  uint64_t end_;
  uint64_t max_;
  std::vector<double> pairs_;
};

}  // namespace

Napi::Value DataExtentsAsync(const Napi::CallbackInfo& info) {
  int fd = int(ArgU64(info, 0, "fd"));
  uint64_t start = ArgU64(info, 1, "start");
  uint64_t end = ArgU64(info, 2, "end");
  uint64_t max_extents = ArgU64(info, 3, "maxExtents");
  if (max_extents == 0)
    throw Napi::RangeError::New(info.Env(), "maxExtents must be positive");
  auto* worker = new DataExtentsWorker(info.Env(), fd, start, end, max_extents);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace cdi
