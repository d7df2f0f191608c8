// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the plain C++ core: header parser, L1/L2 mapping and the chunk copier
// (decompression included), reading the input as the image and writing to a bounds-checked sink.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../src/qcow2.h"
#include "fuzz_io.h"

namespace {

using fuzz::CheckWriter;
using fuzz::MemReader;

constexpr uint64_t kChunk = 2ull << 20;
constexpr size_t kMaxTables = 64;
constexpr uint64_t kMaxGuestBytes = 32ull << 20;

void RunChunks(const qcow2::Header& h,
               const std::vector<qcow2::Extent>& ex,
               MemReader& reader,
               CheckWriter& writer,
               uint64_t& budget) {
  size_t i = 0;
  while (i < ex.size() && budget > 0) {
    if (ex[i].kind == qcow2::kZero) {
      i++;
      continue;
    }
    uint64_t start = ex[i].guest;
    size_t j = i;
    uint64_t end = start;
    while (j < ex.size() && ex[j].kind != qcow2::kZero && ex[j].guest == end &&
           (end + std::min(ex[j].length, kChunk) - start) <= kChunk) {
      if (ex[j].length > kChunk)
        break;
      end += ex[j].length;
      j++;
    }
    if (j == i) {  // a data run longer than a chunk: take its first chunk only
      qcow2::Extent e = ex[i];
      e.length = e.host_len = kChunk;
      qcow2::ProcessChunk(h, e.guest, kChunk, &e, 1, reader, writer, true);
      budget = budget > kChunk ? budget - kChunk : 0;
      i++;
      continue;
    }
    qcow2::ProcessChunk(h, start, end - start, ex.data() + i, j - i, reader, writer, i % 2 == 0);
    budget = budget > end - start ? budget - (end - start) : 0;
    i = j;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qcow2::Header h = qcow2::ParseHeader(data, size, size);
    if (h.l1_entries * 8 > size)
      abort();  // validation must have caught it
    // With no L1 entries the offset is never read (it may be garbage, as qemu allows).
    std::vector<uint64_t> l2 = h.l1_entries == 0
                                   ? std::vector<uint64_t>()
                                   : qcow2::ParseL1(h, data + h.l1_offset, size - h.l1_offset);
    MemReader reader(data, size);
    CheckWriter writer(h.virtual_size);
    uint64_t budget = kMaxGuestBytes;
    size_t tables = 0;
    for (size_t i = 0; i < l2.size() && tables < kMaxTables; i++) {
      if (l2[i] == 0)
        continue;
      tables++;
      if (l2[i] + h.cluster_size > size)
        abort();
      std::vector<qcow2::Extent> ex;
      qcow2::MapL2(h, i, data + l2[i], h.cluster_size, ex);
      for (const qcow2::Extent& e : ex) {
        if (e.guest + e.length > h.virtual_size)
          abort();
        if (e.kind == qcow2::kCompressed && e.host + e.host_len > size)
          abort();
      }
      RunChunks(h, ex, reader, writer, budget);
    }
  } catch (const qcow2::Error&) {
  }
  return 0;
}
