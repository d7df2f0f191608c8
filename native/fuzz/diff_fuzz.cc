// SPDX-License-Identifier: Apache-2.0
// Differential libFuzzer target: the same image goes through the converters' three orders of
// work, and any two that accept must write identical disks (else abort):
//  - random access: tables in L1 / block order, chunks of 2 MiB (random-access.ts);
//  - sequential: the image arrives in pieces whose sizes derive from the input, tables are
//    claimed and mapped in host order (as a stream meets them), chunks cut at random points
//    (qcow2-stream.ts, block-map-stream.ts);
//  - sequential behind gzip: the image is deflated here and inflated in pieces of random size.
// Accept/refuse must agree too: host-byte claims (host_claims.h) are order independent. The
// TypeScript converters themselves are compared, with qemu-img as the oracle, by
// `npm run fuzz -- --differential` (run.mjs) over this target's corpus.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "../src/image_format.h"
#include "../src/qcow2.h"
#include "fuzz_io.h"

namespace {

using fuzz::MemReader;

constexpr uint64_t kMaxDisk = 8ull << 20;  // larger disks are not compared (memory, speed)
constexpr uint64_t kChunk = 2ull << 20;

// Deterministic choices derived from the input (libFuzzer needs reproducible runs).
class Rng {
 public:
  explicit Rng(const uint8_t* d, size_t n) {
    for (size_t i = 0; i < n; i += 61)
      s_ = s_ * 1099511628211ull ^ d[i];
    s_ ^= n;
  }
  uint64_t Next(uint64_t bound) {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return bound == 0 ? 0 : s_ % bound;
  }

 private:
  uint64_t s_ = 1469598103934665603ull;
};

class DiskWriter : public qcow2::TargetWriter {
 public:
  explicit DiskWriter(uint64_t size) : disk(size, 0) {}
  void Write(const uint8_t* data, size_t len, uint64_t offset) override {
    if (offset > disk.size() || len > disk.size() - offset)
      abort();  // write past the disk
    memcpy(disk.data() + offset, data, len);
  }
  std::vector<uint8_t> disk;
};

// Runs extents (guest order) through ProcessChunk, cutting chunks at random points: a data
// extent may be split anywhere on a 512-byte boundary; compressed clusters and grains are whole.
void RunChunks(const qcow2::Header& h,
               std::vector<qcow2::Extent> ex,
               const uint8_t* data,
               size_t size,
               DiskWriter& w,
               Rng* rng) {
  MemReader reader(data, size);
  size_t i = 0;
  while (i < ex.size()) {
    if (ex[i].kind == qcow2::kZero) {
      i++;
      continue;
    }
    const uint64_t limit = rng == nullptr ? kChunk : 512 * (1 + rng->Next(kChunk / 512));
    std::vector<qcow2::Extent> chunk;
    const uint64_t start = ex[i].guest;
    uint64_t end = start;
    while (i < ex.size() && ex[i].kind != qcow2::kZero && ex[i].guest == end) {
      qcow2::Extent e = ex[i];
      if (end - start + e.length > limit) {
        if (e.kind != qcow2::kData || !chunk.empty()) {
          if (chunk.empty()) {  // one whole cluster or grain
            chunk.push_back(e);
            end += e.length;
            i++;
          }
          break;
        }
        const uint64_t part = std::max<uint64_t>(512, (limit - (end - start)) / 512 * 512);
        if (part < e.length) {
          qcow2::Extent head = e;
          head.length = head.host_len = part;
          chunk.push_back(head);
          end += part;
          ex[i].guest += part;
          ex[i].host += part;
          ex[i].length -= part;
          ex[i].host_len -= part;
          break;
        }
      }
      chunk.push_back(e);
      end += e.length;
      i++;
    }
    qcow2::ProcessChunk(h, start, end - start, chunk.data(), chunk.size(), reader, w,
                        (start >> 9) % 2 == 0);
  }
}

using Disk = std::optional<std::vector<uint8_t>>;  // empty: refused

// qcow2, as the converters work: `host_order` claims and maps tables in host order.
Disk Qcow2(const uint8_t* data, size_t size, Rng* rng) {
  try {
    const qcow2::Header h = qcow2::ParseHeader(data, size, size);
    if (h.virtual_size > kMaxDisk || h.refusal_code != nullptr)
      return std::nullopt;
    DiskWriter w(h.virtual_size);
    if (h.l1_entries == 0)
      return w.disk;
    const std::vector<uint64_t> l2 = qcow2::ParseL1(h, data + h.l1_offset, size - h.l1_offset);
    qcow2::HostClaims claims;
    // What a stream meets, by host offset; random access takes them in this order as listed.
    constexpr uint64_t kRefcounts = ~uint64_t(0);
    std::vector<std::pair<uint64_t, uint64_t>> work;  // (host offset, L1 index or kRefcounts)
    work.push_back({h.refcount_table_offset, kRefcounts});
    for (uint64_t i = 0; i < l2.size(); i++) {
      if (l2[i] != 0)
        work.push_back({l2[i], i});
    }
    if (rng != nullptr) {
      std::stable_sort(work.begin(), work.end());
    } else {
      qcow2::ClaimTables(h, l2, claims);  // random access: at parseL1
    }
    std::vector<qcow2::Extent> ex;
    for (const auto& [offset, index] : work) {
      if (index == kRefcounts) {
        qcow2::ClaimRefcountBlocks(h, data + offset,
                                   uint64_t(h.refcount_table_clusters) * h.cluster_size, claims);
        continue;
      }
      std::vector<qcow2::Extent> part;
      qcow2::MapL2(h, index, data + offset, h.cluster_size, part, &claims);
      ex.insert(ex.end(), part.begin(), part.end());
    }
    if (rng != nullptr)
      qcow2::ClaimTables(h, l2, claims);  // a stream may meet the L1 table after the others
    std::stable_sort(ex.begin(), ex.end(), [](const qcow2::Extent& a, const qcow2::Extent& b) {
      return a.guest < b.guest;
    });
    RunChunks(h, ex, data, size, w, rng);
    return w.disk;
  } catch (const qcow2::Error&) {
    return std::nullopt;
  }
}

// A block-map format: random access feeds the tables as asked; the sequential order feeds
// the pending ones last first.
Disk Blocks(imgfmt::Format f, const uint8_t* data, size_t size, Rng* rng) {
  try {
    size_t head = std::min<size_t>(
        size, f == imgfmt::Format::kVhdx ? imgfmt::kVhdxHeadBytes : imgfmt::kHeadBytes);
    size_t tail = std::min<size_t>(size, imgfmt::kTailBytes);
    imgfmt::Image image = imgfmt::ParseImage(f, data, head, data + size - tail, tail, size);
    if (image.virtual_size > kMaxDisk || image.refusal_code != nullptr)
      return std::nullopt;
    imgfmt::BlockMap map(image);
    for (size_t feeds = 0; !map.Complete(); feeds++) {
      if (feeds > 256)
        return std::nullopt;
      const std::vector<imgfmt::Range>& needs = map.Needs();
      imgfmt::Range r = rng == nullptr ? needs.front() : needs[rng->Next(needs.size())];
      if (r.offset > size || r.length > size - r.offset)
        abort();
      map.Feed(r.offset, data + r.offset, size_t(r.length));
    }
    qcow2::Header h;
    h.file_size = size;
    h.cluster_size = map.image().block_size;
    std::vector<qcow2::Extent> ex;
    map.Map(0, map.image().block_count, ex);
    DiskWriter w(map.image().virtual_size);
    RunChunks(h, ex, data, size, w, rng);
    return w.disk;
  } catch (const qcow2::Error&) {
    return std::nullopt;
  }
}

// Gzips the image and inflates it again in pieces of random size, as an HTTP body arrives.
std::vector<uint8_t> ThroughGzip(const uint8_t* data, size_t size, Rng& rng) {
  z_stream d{};
  if (deflateInit2(&d, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  std::vector<uint8_t> gz(deflateBound(&d, size) + 64);
  d.next_in = const_cast<uint8_t*>(data);
  d.avail_in = uInt(size);
  d.next_out = gz.data();
  d.avail_out = uInt(gz.size());
  if (deflate(&d, Z_FINISH) != Z_STREAM_END)
    abort();
  gz.resize(d.total_out);
  deflateEnd(&d);
  z_stream s{};
  if (inflateInit2(&s, 31) != Z_OK)
    abort();
  std::vector<uint8_t> out(size + 1);  // one spare byte: inflate must see the end with room left
  s.next_out = out.data();
  s.avail_out = uInt(out.size());
  size_t pos = 0;
  int ret = Z_OK;
  while (ret != Z_STREAM_END && pos < gz.size()) {
    size_t n = std::min<size_t>(gz.size() - pos, 1 + rng.Next(4096));
    s.next_in = gz.data() + pos;
    s.avail_in = uInt(n);
    ret = inflate(&s, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
      abort();
    pos += n - s.avail_in;
  }
  if (ret != Z_STREAM_END || s.total_out != size)
    abort();
  inflateEnd(&s);
  out.resize(size);
  return out;
}

void Compare(const Disk& a, const Disk& b) {
  if (a.has_value() != b.has_value())
    abort();  // one converter accepts what another refuses
  if (a.has_value() && *a != *b)
    abort();  // two converters accept and disagree
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Rng rng(data, size);
  const std::vector<uint8_t> inflated = ThroughGzip(data, size, rng);
  if (memcmp(inflated.data(), data, size) != 0)
    abort();
  if (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0) {
    Disk random = Qcow2(data, size, nullptr);
    Compare(random, Qcow2(data, size, &rng));
    Compare(random, Qcow2(inflated.data(), inflated.size(), &rng));
    return 0;
  }
  for (imgfmt::Format f :
       {imgfmt::Format::kVdi, imgfmt::Format::kVhd, imgfmt::Format::kVmdk, imgfmt::Format::kVhdx}) {
    Disk random = Blocks(f, data, size, nullptr);
    Compare(random, Blocks(f, data, size, &rng));
    Compare(random, Blocks(f, inflated.data(), inflated.size(), &rng));
  }
  return 0;
}
