// SPDX-License-Identifier: Apache-2.0
// A buffer aligned for O_DIRECT writes (fd_io.h), grown on demand. Header-only: the fuzz targets
// build the converters without the descriptor code.
#ifndef CDI_NATIVE_ALIGNED_BUFFER_H_
#define CDI_NATIVE_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace qcow2 {

// Memory, offset and length alignment of a write through an O_DIRECT descriptor.
constexpr size_t kDirectAlign = 4096;

// Its content is not kept when it grows.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { free(data_); }

  // Makes room for `n` bytes.
  void Reserve(size_t n) {
    if (n <= capacity_)
      return;
    Release();
    void* p = nullptr;
    if (posix_memalign(&p, kDirectAlign, n > 0 ? n : 1) != 0)
      throw std::bad_alloc();
    data_ = static_cast<uint8_t*>(p);
    capacity_ = n;
  }

  void Release() {
    free(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

  uint8_t* data() { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace qcow2

#endif  // CDI_NATIVE_ALIGNED_BUFFER_H_
