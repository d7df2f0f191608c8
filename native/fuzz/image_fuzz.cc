// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the VDI/VHD/VMDK/VHDX cores (src/image_format.cc): the input is the whole
// image and is tried as each format. For the one whose header parses it feeds the tables the
// block map asks for, maps every block, checks what validation promised (tables and blocks inside
// the input, extents inside the disk), and runs the chunk copier (VMDK grain inflation included)
// into a bounds-checked sink.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../src/image_format.h"
#include "../src/qcow2.h"
#include "fuzz_io.h"

namespace {

using fuzz::CheckWriter;
using fuzz::MemReader;

constexpr uint64_t kChunk = 1ull << 20;
constexpr uint64_t kMaxGuestBytes = 4ull << 20;
constexpr uint64_t kMaxBlocks = 1 << 16;
constexpr size_t kMaxTableFeeds = 256;

void Run(imgfmt::Format format, const uint8_t* data, size_t size) {
  size_t head = std::min<size_t>(
      size, format == imgfmt::Format::kVhdx ? imgfmt::kVhdxHeadBytes : imgfmt::kHeadBytes);
  size_t tail = std::min<size_t>(size, imgfmt::kTailBytes);
  imgfmt::Image image = imgfmt::ParseImage(format, data, head, data + size - tail, tail, size);
  if (image.virtual_size > imgfmt::kMaxVirtualSize)
    abort();
  imgfmt::BlockMap map(image);
  size_t feeds = 0;
  while (!map.Complete()) {
    if (++feeds > kMaxTableFeeds)
      return;
    imgfmt::Range r = map.Needs().front();
    if (r.offset > size || r.length > size - r.offset)
      abort();  // validation let a table past the end through
    map.Feed(r.offset, data + r.offset, size_t(r.length));
  }
  qcow2::Header h;
  h.file_size = size;
  h.cluster_size = image.block_size;
  MemReader reader(data, size);
  CheckWriter writer(image.virtual_size);
  uint64_t budget = kMaxGuestBytes;
  uint64_t blocks = std::min(image.block_count, kMaxBlocks);
  std::vector<qcow2::Extent> ex;
  map.Map(0, blocks, ex);
  for (const qcow2::Extent& e : ex) {
    if (e.guest + e.length > image.virtual_size)
      abort();
    if (e.kind == qcow2::kData && !image.fixed && e.host >= size)
      abort();
    if (e.kind == qcow2::kMarkerGrain && e.host + e.host_len > size)
      abort();
    if (e.kind == qcow2::kZero || budget == 0)
      continue;
    // One chunk per extent, at most kChunk guest bytes.
    qcow2::Extent c = e;
    if (c.length > kChunk) {
      if (c.kind != qcow2::kData)
        abort();  // grains are never longer than a chunk
      c.length = c.host_len = kChunk;
    }
    qcow2::ProcessChunk(h, c.guest, c.length, &c, 1, reader, writer, (c.guest >> 9) % 2 == 0);
    budget = budget > c.length ? budget - c.length : 0;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (imgfmt::Format f :
       {imgfmt::Format::kVdi, imgfmt::Format::kVhd, imgfmt::Format::kVmdk, imgfmt::Format::kVhdx}) {
    try {
      Run(f, data, size);
    } catch (const qcow2::Error&) {
    }
  }
  return 0;
}
