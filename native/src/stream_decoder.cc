// SPDX-License-Identifier: Apache-2.0
#include "stream_decoder.h"

#include <isa-l/igzip_lib.h>
#include <lzma.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "qcow2.h"

namespace decode {

namespace {

[[noreturn]] void Fail(const std::string& message) {
  throw qcow2::Error(kDecompressFailed, message);
}

// Calls in a row that move no byte before a finishing stream counts as truncated. liblzma itself
// reports LZMA_BUF_ERROR on the second; this only guards against looping forever.
constexpr int kMaxIdleCalls = 4;

class XzDecoder final : public StreamDecoder {
 public:
  XzDecoder(uint32_t threads, uint64_t threading_memory) {
    lzma_mt mt;
    std::memset(&mt, 0, sizeof mt);
    mt.flags = LZMA_CONCATENATED;
    mt.threads = std::max<uint32_t>(1, threads);
    mt.timeout = 0;  // block until progress: the caller is a pool thread, not the event loop
    mt.memlimit_threading = threading_memory;
    mt.memlimit_stop = UINT64_MAX;
    lzma_ret r = lzma_stream_decoder_mt(&strm_, &mt);
    if (r == LZMA_MEM_ERROR)
      Fail("xz decoder: out of memory");
    if (r != LZMA_OK)
      Fail("xz decoder cannot start (liblzma error " + std::to_string(int(r)) + ")");
  }
  ~XzDecoder() override { lzma_end(&strm_); }
  XzDecoder(const XzDecoder&) = delete;
  XzDecoder& operator=(const XzDecoder&) = delete;

  Step Decode(const uint8_t* in,
              size_t in_len,
              uint8_t* out,
              size_t out_len,
              bool finish) override {
    Step step;
    if (ended_) {
      step.ended = true;
      return step;
    }
    strm_.next_in = in;
    strm_.avail_in = in_len;
    strm_.next_out = out;
    strm_.avail_out = out_len;
    const lzma_action action = finish ? LZMA_FINISH : LZMA_RUN;
    int idle = 0;
    while (strm_.avail_out > 0) {
      const size_t in_before = strm_.avail_in;
      const size_t out_before = strm_.avail_out;
      const lzma_ret r = lzma_code(&strm_, action);
      if (r == LZMA_STREAM_END) {
        ended_ = true;
        step.ended = true;
        break;
      }
      if (r != LZMA_OK)
        Fail(Message(r, finish));
      const bool moved = strm_.avail_in != in_before || strm_.avail_out != out_before;
      if (moved) {
        idle = 0;
        continue;
      }
      // Without more input there is nothing to do until the next call; at the end, liblzma
      // reports LZMA_BUF_ERROR (truncated) after a call that moved nothing.
      if (!finish)
        break;
      if (++idle >= kMaxIdleCalls)
        Fail(Message(LZMA_BUF_ERROR, true));
    }
    step.consumed = in_len - strm_.avail_in;
    step.produced = out_len - strm_.avail_out;
    return step;
  }

 private:
  // The wording of xz's own messages, so that they read the same as before.
  static std::string Message(lzma_ret r, bool finish) {
    switch (r) {
      case LZMA_FORMAT_ERROR:
        return "xz stream is corrupt: file format not recognized";
      case LZMA_DATA_ERROR:
        return "xz stream is corrupt: compressed data is corrupt";
      case LZMA_OPTIONS_ERROR:
        return "xz stream is corrupt: unsupported options";
      case LZMA_BUF_ERROR:
        return finish ? "xz stream is truncated: unexpected end of input"
                      : "xz stream is corrupt: the decoder cannot make progress";
      case LZMA_MEM_ERROR:
        return "xz decoder: out of memory";
      case LZMA_MEMLIMIT_ERROR:
        return "xz decoder: memory usage limit reached";
      default:
        return "xz stream is corrupt (liblzma error " + std::to_string(int(r)) + ")";
    }
  }

  lzma_stream strm_ = LZMA_STREAM_INIT;
  bool ended_ = false;
};

class GzipDecoder final : public StreamDecoder {
 public:
  GzipDecoder() {
    isal_inflate_init(&state_);
    state_.crc_flag = ISAL_GZIP;
  }

  Step Decode(const uint8_t* in,
              size_t in_len,
              uint8_t* out,
              size_t out_len,
              bool finish) override {
    Step step;
    size_t pos = 0;
    size_t produced = 0;
    while (produced < out_len) {
      if (state_.block_state == ISAL_BLOCK_FINISH) {
        // A member is complete: what follows is another member, zero padding, or the end.
        while (pos < in_len && in[pos] == 0) {
          pos++;
          padding_ = true;
        }
        if (pos == in_len)
          break;
        // ISA-L checks the magic only once the whole header is there: a short tail of garbage
        // would read as a truncated member.
        const bool magic = in[pos] == 0x1f && (pos + 1 == in_len || in[pos + 1] == 0x8b);
        if (padding_ || !magic)
          Fail("gzip stream is corrupt: trailing garbage after the last member");
        isal_inflate_reset(&state_);
        members_++;
      }
      const size_t in_chunk = std::min<size_t>(in_len - pos, UINT32_MAX);
      const size_t out_chunk = std::min<size_t>(out_len - produced, UINT32_MAX);
      state_.next_in = const_cast<uint8_t*>(in + pos);
      state_.avail_in = uint32_t(in_chunk);
      state_.next_out = out + produced;
      state_.avail_out = uint32_t(out_chunk);
      const int r = isal_inflate(&state_);
      const size_t used = in_chunk - state_.avail_in;
      const size_t made = out_chunk - state_.avail_out;
      pos += used;
      produced += made;
      if (r != ISAL_DECOMP_OK)
        Fail(Message(r));
      if (state_.block_state == ISAL_BLOCK_FINISH)
        continue;
      if (used == 0 && made == 0)
        break;
    }
    step.consumed = pos;
    step.produced = produced;
    if (finish && pos == in_len && produced < out_len) {
      if (state_.block_state != ISAL_BLOCK_FINISH) {
        Fail(members_ == 0 && state_.wrapper_flag == 0
                 ? "gzip stream is truncated: it ends before the first member is complete"
                 : "gzip stream is truncated: it ends in the middle of a member");
      }
      step.ended = true;
    }
    return step;
  }

 private:
  std::string Message(int r) const {
    switch (r) {
      case ISAL_INVALID_WRAPPER:
        return members_ == 0 ? "gzip stream is corrupt: not in gzip format"
                             : "gzip stream is corrupt: trailing garbage after the last member";
      case ISAL_UNSUPPORTED_METHOD:
        return "gzip stream is corrupt: unknown compression method";
      case ISAL_INCORRECT_CHECKSUM:
        return "gzip stream is corrupt: CRC or length check failed";
      case ISAL_INVALID_BLOCK:
      case ISAL_INVALID_SYMBOL:
      case ISAL_INVALID_LOOKBACK:
        return "gzip stream is corrupt: invalid compressed data";
      default:
        return "gzip stream is corrupt (ISA-L error " + std::to_string(r) + ")";
    }
  }

  inflate_state state_;
  uint64_t members_ = 0;  // members started after the first one
  bool padding_ = false;  // zero bytes followed the last member
};

}  // namespace

std::unique_ptr<StreamDecoder> NewXzDecoder(uint32_t threads, uint64_t threading_memory) {
  return std::make_unique<XzDecoder>(threads, threading_memory);
}

std::unique_ptr<StreamDecoder> NewGzipDecoder() {
  return std::make_unique<GzipDecoder>();
}

bool AllZero(const uint8_t* p, size_t n) {
  // A zero first byte and each byte equal to the next: memcmp's speed without a zero buffer.
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace decode
