// SPDX-License-Identifier: Apache-2.0
#include "fd_io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace qcow2 {
namespace {

[[noreturn]] void ThrowErrno(const char* what, uint64_t offset, int err) {
  const char* code = (err == ENOSPC || err == EDQUOT) ? kNoSpace : kWriteFailed;
  if (err == ENOSPC || err == EDQUOT) {
    throw Error(code, std::string("no space left on device ") + what + " at offset " +
                          std::to_string(offset));
  }
  throw Error(code, std::string(what) + " at offset " + std::to_string(offset) +
                        " failed: " + strerror(err));
}

}  // namespace

void FdReader::Read(uint64_t offset, size_t len, uint8_t* dst) {
  size_t done = 0;
  while (done < len) {
    uint64_t pos = offset + done;
    if (pos >= file_size_)
      break;
    size_t want = size_t(std::min<uint64_t>(len - done, file_size_ - pos));
    ssize_t n = pread(fd_, dst + done, want, off_t(pos));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      throw Error(kConvertFailed, "reading the image at offset " + std::to_string(pos) +
                                      " failed: " + strerror(err));
    }
    if (n == 0)
      break;  // the file shrank: the rest reads as zeros, like qemu
    done += size_t(n);
  }
  if (done < len)
    memset(dst + done, 0, len - done);
}

BufferReader::BufferReader(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {
  std::sort(pieces_.begin(), pieces_.end(),
            [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
}

void BufferReader::Read(uint64_t offset, size_t len, uint8_t* dst) {
  const uint64_t end = offset + len;
  uint64_t pos = offset;  // bytes of dst before this offset are final
  // First piece that may overlap: the last one starting at or before `offset`.
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), offset,
                             [](uint64_t v, const Piece& p) { return v < p.offset; });
  if (it != pieces_.begin())
    --it;
  for (; it != pieces_.end() && it->offset < end; ++it) {
    uint64_t s = std::max(pos, it->offset);
    uint64_t e = std::min(end, it->offset + it->len);
    if (s >= e)
      continue;
    // Only what no piece covers is cleared: the copy overwrites the rest.
    memset(dst + (pos - offset), 0, size_t(s - pos));
    memcpy(dst + (s - offset), it->data + (s - it->offset), size_t(e - s));
    pos = e;
  }
  memset(dst + (pos - offset), 0, size_t(end - pos));
}

void FdWriter::Write(const uint8_t* data, size_t len, uint64_t offset) {
  if (direct_fd_ < 0) {
    Buffered(data, len, offset);
    return;
  }
  size_t head = std::min<size_t>(len, (kDirectAlign - offset % kDirectAlign) % kDirectAlign);
  size_t middle = (len - head) / kDirectAlign * kDirectAlign;
  if (head > 0)
    Buffered(data, head, offset);
  size_t done = head;
  // Memory and file offsets disagree modulo the alignment: the middle is copied into an
  // aligned buffer first, which costs far less than the page cache's copy and writeback.
  const bool bounce = (reinterpret_cast<uintptr_t>(data) - offset) % kDirectAlign != 0;
  thread_local AlignedBuffer bounce_buffer;
  constexpr size_t kBounceBytes = 1u << 20;
  while (done < head + middle && direct_fd_ >= 0) {
    size_t want = head + middle - done;
    const uint8_t* from = data + done;
    if (bounce) {
      want = std::min(want, kBounceBytes);
      bounce_buffer.Reserve(kBounceBytes);
      memcpy(bounce_buffer.data(), from, want);
      from = bounce_buffer.data();
    }
    ssize_t n = pwrite(direct_fd_, from, want, off_t(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EINVAL) {
      // This file system or device takes no direct writes of this shape: buffered from now on.
      direct_fd_ = -1;
      break;
    }
    if (n < 0)
      ThrowErrno("writing the target", offset + done, errno);
    done += size_t(n);
    // A short direct write can leave an unaligned rest: that goes the buffered way.
    if (size_t(n) % kDirectAlign != 0)
      break;
  }
  if (done < len)
    Buffered(data + done, len - done, offset + done);
}

void FdWriter::Buffered(const uint8_t* data, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd_, data + done, len - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ThrowErrno("writing the target", offset + done, errno);
    }
    done += size_t(n);
  }
}

void ZeroRange(int fd, uint64_t offset, uint64_t len) {
  if (len == 0)
    return;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
    uint64_t range[2] = {offset, len};
    if (ioctl(fd, BLKZEROOUT, range) == 0)
      return;
  } else {
    // A plain file standing in for a device: a hole keeps it sparse; ZERO_RANGE otherwise.
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(len)) == 0) {
      return;
    }
    if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(len)) == 0) {
      return;
    }
  }
  static const std::vector<uint8_t> zeros(1 << 20);
  FdWriter writer(fd);
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(zeros.size(), len - done));
    writer.Write(zeros.data(), n, offset + done);
    done += n;
  }
}

}  // namespace qcow2
