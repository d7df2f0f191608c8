// SPDX-License-Identifier: Apache-2.0
// Streaming decoders of whole compressed images: xz (liblzma's multi-threaded decoder) and gzip
// (ISA-L's inflate). Plain C++, no Node-API: decoder_wrap.cc runs them on the libuv pool.
#ifndef CDI_NATIVE_STREAM_DECODER_H_
#define CDI_NATIVE_STREAM_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace decode {

constexpr const char* kDecompressFailed = "CDI_DECOMPRESS_FAILED";

// What one Decode call did.
struct Step {
  size_t consumed = 0;  // input bytes used
  size_t produced = 0;  // output bytes written
  bool ended = false;   // the stream is complete (only reported once no input follows)
};

class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Decodes `in` into `out` until `out` is full, the input is used up or the stream ends. Input
  // not consumed must be passed again. `finish`: nothing follows `in`; a stream that is not
  // complete at that point is truncated. Throws qcow2::Error with kDecompressFailed.
  virtual Step Decode(const uint8_t* in,
                      size_t in_len,
                      uint8_t* out,
                      size_t out_len,
                      bool finish) = 0;
};

// xz, concatenated streams and stream padding decoded as `xz -dc` does. Blocks are decoded on
// `threads` threads while their buffers fit in `threading_memory` bytes; larger blocks fall back
// to one thread, so no real image fails for memory.
std::unique_ptr<StreamDecoder> NewXzDecoder(uint32_t threads, uint64_t threading_memory);

// gzip, concatenated members decoded as one stream, header and CRC-32/ISIZE of each member
// checked. Zero bytes after the last member are padding (as `gzip -dc` accepts them); anything
// else after it is an error.
std::unique_ptr<StreamDecoder> NewGzipDecoder();

// True when the n bytes at p are all zero.
bool AllZero(const uint8_t* p, size_t n);

}  // namespace decode

#endif  // CDI_NATIVE_STREAM_DECODER_H_
