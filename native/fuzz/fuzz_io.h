// SPDX-License-Identifier: Apache-2.0
// What both libFuzzer targets read from and write to: the input as the image file (reads past its
// end give zeros, as a short file would) and a sink that aborts on any write outside the disk and
// touches every written sector so ASan sees the bytes.
#ifndef CDI_NATIVE_FUZZ_IO_H_
#define CDI_NATIVE_FUZZ_IO_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../src/qcow2.h"

namespace fuzz {

class MemReader : public qcow2::HostReader {
 public:
  MemReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  void Read(uint64_t offset, size_t len, uint8_t* dst) override {
    memset(dst, 0, len);
    if (offset >= size_)
      return;
    size_t n = size_t(std::min<uint64_t>(len, size_ - offset));
    memcpy(dst, data_ + offset, n);
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

class CheckWriter : public qcow2::TargetWriter {
 public:
  explicit CheckWriter(uint64_t virtual_size) : virtual_size_(virtual_size) {}
  void Write(const uint8_t* data, size_t len, uint64_t offset) override {
    if (offset > virtual_size_ || len > virtual_size_ - offset)
      abort();  // write past the disk
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i += 512)
      acc ^= data[i];  // touch the bytes (ASan checks)
    sink_ ^= acc;
  }
  uint8_t sink_ = 0;

 private:
  uint64_t virtual_size_;
};

}  // namespace fuzz

#endif  // CDI_NATIVE_FUZZ_IO_H_
