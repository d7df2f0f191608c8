// SPDX-License-Identifier: Apache-2.0
// File-descriptor readers and writers for the chunk copier, and ZeroRange. Plain C++.
#ifndef CDI_NATIVE_FD_IO_H_
#define CDI_NATIVE_FD_IO_H_

#include <cstdint>
#include <vector>

#include "aligned_buffer.h"
#include "qcow2.h"

namespace qcow2 {

// Reads host bytes with pread; bytes at or past `file_size` read as zeros.
class FdReader : public HostReader {
 public:
  FdReader(int fd, uint64_t file_size) : fd_(fd), file_size_(file_size) {}
  void Read(uint64_t offset, size_t len, uint8_t* dst) override;

 private:
  int fd_;
  uint64_t file_size_;
};

// Host bytes handed over by JavaScript as buffers at known offsets; uncovered bytes read as
// zeros (the caller clamps ranges to the image end, so only bytes past EOF are uncovered).
class BufferReader : public HostReader {
 public:
  struct Piece {
    uint64_t offset;
    const uint8_t* data;
    size_t len;
  };
  explicit BufferReader(std::vector<Piece> pieces);
  void Read(uint64_t offset, size_t len, uint8_t* dst) override;

 private:
  std::vector<Piece> pieces_;  // sorted by offset
};

// Writes with pwrite, retrying short writes; ENOSPC/EDQUOT become kNoSpace. With `direct_fd` (the
// same file opened with O_DIRECT) the aligned middle of a write bypasses the page cache: no copy
// into fresh cache pages, no writeback at fsync (measured on a 1 GiB import: a third of the
// system time). The unaligned edges go through `fd`; memory not aligned like the offset is
// copied into an aligned buffer first. A descriptor that refuses a direct write (EINVAL) is not
// used again by this writer.
class FdWriter : public TargetWriter {
 public:
  explicit FdWriter(int fd, int direct_fd = -1) : fd_(fd), direct_fd_(direct_fd) {}
  void Write(const uint8_t* data, size_t len, uint64_t offset) override;

 private:
  void Buffered(const uint8_t* data, size_t len, uint64_t offset);
  int fd_;
  int direct_fd_;
};

// Makes [offset, offset+len) of fd read as zeros: BLKZEROOUT on a block device, else
// fallocate(ZERO_RANGE), else fallocate(PUNCH_HOLE|KEEP_SIZE), else writing zeros.
void ZeroRange(int fd, uint64_t offset, uint64_t len);

}  // namespace qcow2

#endif  // CDI_NATIVE_FD_IO_H_
