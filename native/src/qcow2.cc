// SPDX-License-Identifier: Apache-2.0
#include "qcow2.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "aligned_buffer.h"
#include "parse_util.h"

namespace qcow2 {
namespace {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatDataFile = 1ull << 2;
constexpr uint64_t kIncompatCompression = 1ull << 3;
constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
constexpr uint64_t kIncompatKnown = 0x1f;
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;  // L1E/L2E_OFFSET_MASK
constexpr uint64_t kOflagCompressed = 1ull << 62;
constexpr uint64_t kOflagZero = 1ull;
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtDataFile = 0x44415441;
constexpr size_t kSparseBlock = 4096;

using parse::Be32;
using parse::Be64;
using parse::Fmt;
using parse::InFile;
using parse::Invalid;

void ParseExtensions(Header& h, const uint8_t* data, size_t len, uint64_t start, uint64_t end) {
  uint64_t off = start;
  end = std::min<uint64_t>(end, len);
  while (off + 8 <= end) {
    uint32_t type = Be32(data + off);
    uint32_t ext_len = Be32(data + off + 4);
    off += 8;
    if (type == kExtEnd)
      return;
    if (ext_len > end - off) {
      Invalid(Fmt("header extension 0x%08" PRIx32 " at offset %" PRIu64 " of %" PRIu32
                  " bytes runs past the header cluster",
                  type, off - 8, ext_len));
    }
    if (type == kExtDataFile) {
      h.has_external_data = true;
      h.external_data_file.assign(reinterpret_cast<const char*>(data + off), ext_len);
    }
    off += (uint64_t(ext_len) + 7) & ~uint64_t(7);
  }
}

void ParseV3Fields(Header& h, const uint8_t* data, size_t len) {
  if (len < 104)
    Invalid(Fmt("image too short for a qcow2 v3 header: %zu bytes", len));
  h.incompatible = Be64(data + 72);
  h.compatible = Be64(data + 80);
  h.autoclear = Be64(data + 88);
  h.refcount_order = Be32(data + 96);
  h.header_length = Be32(data + 100);
  if (h.header_length < 104) {
    Invalid(Fmt("qcow2 header length %" PRIu32 " is shorter than 104 bytes", h.header_length));
  }
  if (h.header_length > h.cluster_size) {
    Invalid(Fmt("qcow2 header length %" PRIu32 " exceeds the cluster size %" PRIu64,
                h.header_length, h.cluster_size));
  }
  if (h.incompatible & ~kIncompatKnown) {
    throw Error(kImageUnsupportedFeature, Fmt("unsupported incompatible feature bits 0x%" PRIx64,
                                              h.incompatible & ~kIncompatKnown));
  }
  if (h.refcount_order > 6) {
    Invalid(Fmt("refcount order %" PRIu32 " too large; may not exceed 6", h.refcount_order));
  }
  if (h.header_length > 104) {
    if (len < 105)
      Invalid("image too short for its compression type field");
    h.compression_type = data[104];
  }
  if (h.compression_type > 1) {
    throw Error(kImageUnsupportedFeature,
                Fmt("unknown compression type %" PRIu32, h.compression_type));
  }
  bool bit = (h.incompatible & kIncompatCompression) != 0;
  if (bit != (h.compression_type != 0)) {
    Invalid(Fmt("compression type %" PRIu32 " disagrees with the compression feature bit",
                h.compression_type));
  }
  h.dirty = (h.incompatible & kIncompatDirty) != 0;
  h.corrupt = (h.incompatible & kIncompatCorrupt) != 0;
  h.extended_l2 = (h.incompatible & kIncompatExtendedL2) != 0;
  h.has_external_data = (h.incompatible & kIncompatDataFile) != 0;
  if (h.extended_l2 && h.cluster_bits < 14) {
    Invalid(
        Fmt("extended l2 entries need clusters of at least 16 KiB, not %" PRIu64, h.cluster_size));
  }
}

void ValidateTables(Header& h) {
  const uint64_t cs = h.cluster_size;
  if (h.virtual_size > kMaxVirtualSize) {
    Invalid(Fmt("virtual size %" PRIu64 " overflows the supported maximum of 2^53 bytes",
                h.virtual_size));
  }
  if (h.l1_size > kMaxL1Entries) {
    Invalid(Fmt("l1 table of %" PRIu32 " entries exceeds qemu's limit of %" PRIu64
                " entries (L1 size too big)",
                h.l1_size, kMaxL1Entries));
  }
  const uint64_t l2_coverage = h.l2_entries * cs;
  h.l1_entries = (h.virtual_size + l2_coverage - 1) / l2_coverage;
  if (h.l1_entries > h.l1_size) {
    Invalid(Fmt("l1 table of %" PRIu32 " entries is too small for virtual size %" PRIu64
                " (needs %" PRIu64 ")",
                h.l1_size, h.virtual_size, h.l1_entries));
  }
  if (h.l1_size > 0) {
    if (h.l1_offset % cs != 0) {
      Invalid(Fmt("l1 table offset %" PRIu64 " is not aligned to the cluster size %" PRIu64,
                  h.l1_offset, cs));
    }
    if (!InFile(h.l1_offset, uint64_t(h.l1_size) * 8, h.file_size)) {
      Invalid(Fmt("l1 table at offset %" PRIu64 " (%" PRIu64
                  " bytes) extends past the end of the file (%" PRIu64 " bytes)",
                  h.l1_offset, uint64_t(h.l1_size) * 8, h.file_size));
    }
  }
  if (uint64_t(h.refcount_table_clusters) > kMaxRefTableBytes / cs) {
    Invalid(Fmt("refcount table of %" PRIu32 " clusters is too large", h.refcount_table_clusters));
  }
  if (h.refcount_table_offset % cs != 0) {
    Invalid(Fmt("refcount table offset %" PRIu64 " is not aligned to the cluster size %" PRIu64,
                h.refcount_table_offset, cs));
  }
  if (!InFile(h.refcount_table_offset, uint64_t(h.refcount_table_clusters) * cs, h.file_size)) {
    Invalid(Fmt("refcount table at offset %" PRIu64 " extends past the end of the file (%" PRIu64
                " bytes)",
                h.refcount_table_offset, h.file_size));
  }
  if (h.nb_snapshots > kMaxSnapshots) {
    Invalid(Fmt("too many snapshots: %" PRIu32, h.nb_snapshots));
  }
  if (h.nb_snapshots > 0) {
    if (h.snapshots_offset % cs != 0) {
      Invalid(Fmt("snapshot table offset %" PRIu64 " is not aligned to the cluster size %" PRIu64,
                  h.snapshots_offset, cs));
    }
    // A table past the end of the file is not refused: qemu reads it as zeros and converts the
    // image (conversion never reads snapshots), and a stream cannot know the end in advance.
  }
}

void SetRefusal(Header& h) {
  if (h.crypt_method != 0) {
    h.refusal_code = kImageEncrypted;
    h.refusal_message = Fmt("image is encrypted (%s); encrypted images are refused",
                            h.crypt_method == 1 ? "aes" : "luks");
  } else if (h.has_external_data) {
    h.refusal_code = kImageExternalData;
    h.refusal_message = h.external_data_file.empty()
                            ? std::string("image keeps its data in an external data file; ") +
                                  "external data files are refused"
                            : "image keeps its data in an external data file '" +
                                  parse::Printable(h.external_data_file) +
                                  "'; external data files are refused";
  } else if (h.has_backing_file) {
    h.refusal_code = kImageBackingFile;
    h.refusal_message = "image has a backing file '" + parse::Printable(h.backing_file) +
                        "'; backing files are never opened";
  }
}

}  // namespace

Header ParseHeader(const uint8_t* data, size_t len, uint64_t file_size) {
  Header h;
  h.file_size = file_size;
  if (len > file_size)
    len = file_size;
  if (len < 72)
    Invalid(Fmt("image too short for a qcow2 header: %zu bytes", len));
  if (Be32(data) != kMagic)
    Invalid("not a qcow2 image: bad magic");
  h.version = Be32(data + 4);
  if (h.version != 2 && h.version != 3) {
    throw Error(kImageUnsupportedFeature, Fmt("unsupported qcow2 version %" PRIu32, h.version));
  }
  uint64_t backing_offset = Be64(data + 8);
  uint32_t backing_size = Be32(data + 16);
  h.cluster_bits = Be32(data + 20);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    Invalid(Fmt("unsupported cluster size: 2^%" PRIu32, h.cluster_bits));
  }
  h.cluster_size = 1ull << h.cluster_bits;
  h.virtual_size = Be64(data + 24);
  h.crypt_method = Be32(data + 32);
  h.l1_size = Be32(data + 36);
  h.l1_offset = Be64(data + 40);
  h.refcount_table_offset = Be64(data + 48);
  h.refcount_table_clusters = Be32(data + 56);
  h.nb_snapshots = Be32(data + 60);
  h.snapshots_offset = Be64(data + 64);
  if (h.version == 3)
    ParseV3Fields(h, data, len);
  if (h.crypt_method > 2)
    Invalid(Fmt("unsupported encryption method %" PRIu32, h.crypt_method));
  h.l2_entry_size = h.extended_l2 ? 16 : 8;
  h.l2_entries = h.cluster_size / h.l2_entry_size;
  h.subcluster_size = h.extended_l2 ? h.cluster_size / 32 : h.cluster_size;
  ValidateTables(h);
  // qemu counts the disk in 512-byte sectors (total_sectors = size / 512) after validating the
  // L1 table against the header's size: a partial last sector is not part of the disk.
  if (h.virtual_size % 512 != 0) {
    h.virtual_size -= h.virtual_size % 512;
    const uint64_t l2_coverage = h.l2_entries * h.cluster_size;
    h.l1_entries = (h.virtual_size + l2_coverage - 1) / l2_coverage;
  }
  if (backing_offset != 0) {
    if (backing_offset > h.cluster_size) {
      Invalid(Fmt("invalid backing file offset %" PRIu64, backing_offset));
    }
    if (backing_size > kMaxBackingNameLength) {
      Invalid(Fmt("backing file name too long: %" PRIu32 " bytes", backing_size));
    }
    if (backing_offset + backing_size > len) {
      Invalid(Fmt("backing file name at offset %" PRIu64 " runs past the end of the file",
                  backing_offset));
    }
    h.has_backing_file = true;
    h.backing_file.assign(reinterpret_cast<const char*>(data + backing_offset), backing_size);
  }
  uint64_t ext_end = backing_offset != 0 ? backing_offset : h.cluster_size;
  ParseExtensions(h, data, len, h.header_length, ext_end);
  SetRefusal(h);
  return h;
}

std::vector<uint64_t> ParseL1(const Header& h, const uint8_t* data, size_t len) {
  if (len < h.l1_entries * 8) {
    Invalid(Fmt("l1 table truncated: %zu of %" PRIu64 " bytes", len, h.l1_entries * 8));
  }
  std::vector<uint64_t> out(h.l1_entries);
  for (uint64_t i = 0; i < h.l1_entries; i++) {
    uint64_t off = Be64(data + i * 8) & kOffsetMask;
    if (off != 0) {
      if (off % h.cluster_size != 0) {
        Invalid(Fmt("l2 table offset %" PRIu64 " in l1 entry %" PRIu64
                    " is not aligned to the cluster size %" PRIu64,
                    off, i, h.cluster_size));
      }
      if (!InFile(off, h.cluster_size, h.file_size)) {
        Invalid(Fmt("l2 table offset %" PRIu64 " in l1 entry %" PRIu64
                    " extends past the end of the file (%" PRIu64 " bytes)",
                    off, i, h.file_size));
      }
    }
    out[i] = off;
  }
  return out;
}

void ClaimTables(const Header& h, const std::vector<uint64_t>& l2, HostClaims& claims) {
  const uint64_t cs = h.cluster_size;
  const auto clusters = [cs](uint64_t bytes) { return (bytes + cs - 1) / cs * cs; };
  claims.Claim(0, cs, Owner{Use::kHeader, 0});
  claims.Claim(h.l1_offset, clusters(uint64_t(h.l1_size) * 8), Owner{Use::kL1Table, 0});
  claims.Claim(h.refcount_table_offset, uint64_t(h.refcount_table_clusters) * cs,
               Owner{Use::kRefcountTable, 0});
  // Each snapshot entry takes at least 40 bytes; its real length needs the table itself.
  if (h.nb_snapshots > 0) {
    claims.Claim(h.snapshots_offset, clusters(uint64_t(h.nb_snapshots) * 40),
                 Owner{Use::kSnapshotTable, 0});
  }
  for (uint64_t i = 0; i < l2.size(); i++) {
    if (l2[i] != 0)
      claims.Claim(l2[i], cs, Owner{Use::kL2Table, i});
  }
}

void ClaimRefcountBlocks(const Header& h, const uint8_t* table, size_t len, HostClaims& claims) {
  const uint64_t n = std::min<uint64_t>(len, uint64_t(h.refcount_table_clusters) * h.cluster_size);
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    // The low 9 bits are reserved (qemu's REFT_OFFSET_MASK); qemu refuses unaligned blocks.
    const uint64_t block = Be64(table + i) & ~uint64_t(511);
    if (block != 0)
      claims.Claim(block, h.cluster_size, Owner{Use::kRefcountBlock, i / 8});
  }
}

namespace {

void Push(std::vector<Extent>& out, const Extent& e) {
  if (!out.empty()) {
    Extent& last = out.back();
    if (last.guest + last.length == e.guest && last.kind == e.kind) {
      if (e.kind == kZero) {
        last.length += e.length;
        return;
      }
      if (e.kind == kData && last.host + last.length == e.host) {
        last.length += e.length;
        last.host_len += e.host_len;
        return;
      }
    }
  }
  out.push_back(e);
}

void MapData(const Header& h,
             uint64_t host,
             uint64_t guest,
             uint64_t len,
             std::vector<Extent>& out) {
  if (host >= h.file_size) {
    Invalid(Fmt("data cluster offset %" PRIu64 " (guest offset %" PRIu64
                ") is past the end of the file (%" PRIu64 " bytes)",
                host, guest, h.file_size));
  }
  Push(out, Extent{guest, len, kData, host, len});
}

void MapCompressed(const Header& h,
                   uint64_t entry,
                   uint64_t guest,
                   uint64_t len,
                   std::vector<Extent>& out) {
  const uint32_t csize_shift = 62 - (h.cluster_bits - 8);
  const uint64_t csize_mask = (1ull << (h.cluster_bits - 8)) - 1;
  const uint64_t offset_mask = (1ull << csize_shift) - 1;
  uint64_t host = entry & offset_mask;
  uint64_t sectors = ((entry >> csize_shift) & csize_mask) + 1;
  uint64_t csize = sectors * 512 - (host & 511);
  if (host >= h.file_size) {
    Invalid(Fmt("compressed cluster at offset %" PRIu64 " (guest offset %" PRIu64
                ") points outside the file (%" PRIu64 " bytes)",
                host, guest, h.file_size));
  }
  // qemu reads the rounded-up sector count; the last one may pass EOF.
  csize = std::min(csize, h.file_size - host);
  Push(out, Extent{guest, len, kCompressed, host, csize});
}

void MapExtended(const Header& h,
                 uint64_t host,
                 uint64_t bitmap,
                 uint64_t guest,
                 uint64_t end,
                 std::vector<Extent>& out) {
  const uint32_t alloc = uint32_t(bitmap);
  const uint32_t zero = uint32_t(bitmap >> 32);
  if (host == 0 && alloc != 0) {
    Invalid(Fmt("subcluster bitmap 0x%016" PRIx64 " at guest offset %" PRIu64
                " allocates subclusters of an unallocated cluster",
                bitmap, guest));
  }
  if (alloc & zero) {
    Invalid(Fmt("subcluster bitmap 0x%016" PRIx64 " at guest offset %" PRIu64
                " marks subclusters both allocated and zero",
                bitmap, guest));
  }
  const uint64_t scs = h.subcluster_size;
  for (uint32_t sc = 0; sc < 32; sc++) {
    uint64_t g = guest + sc * scs;
    if (g >= end)
      break;
    uint64_t len = std::min(scs, end - g);
    if (!(zero & (1u << sc)) && (alloc & (1u << sc))) {
      MapData(h, host + sc * scs, g, len, out);
    } else {
      Push(out, Extent{g, len, kZero, 0, 0});
    }
  }
}

}  // namespace

void MapL2(const Header& h,
           uint64_t l1_index,
           const uint8_t* data,
           size_t len,
           std::vector<Extent>& out,
           HostClaims* claims) {
  if (len < h.cluster_size) {
    Invalid(Fmt("l2 table of l1 entry %" PRIu64 " truncated: %zu bytes", l1_index, len));
  }
  const uint64_t cs = h.cluster_size;
  const uint64_t base = l1_index * h.l2_entries * cs;
  for (uint64_t j = 0; j < h.l2_entries; j++) {
    uint64_t guest = base + j * cs;
    if (guest >= h.virtual_size)
      break;
    uint64_t glen = std::min(cs, h.virtual_size - guest);
    uint64_t entry = Be64(data + j * h.l2_entry_size);
    if (entry & kOflagCompressed) {
      MapCompressed(h, entry, guest, glen, out);
      if (claims != nullptr) {
        const Extent& e = out.back();
        claims->ClaimPacked(e.host, e.host_len, Owner{Use::kCompressedCluster, guest});
      }
      continue;
    }
    uint64_t host = entry & kOffsetMask;
    if (host != 0 && host % cs != 0) {
      Invalid(Fmt("data cluster offset %" PRIu64 " (guest offset %" PRIu64
                  ") is not aligned to the cluster size %" PRIu64,
                  host, guest, cs));
    }
    // Allocated clusters are claimed whole, read or not (zero-allocated, unused subclusters).
    if (claims != nullptr && host != 0)
      claims->Claim(host, cs, Owner{Use::kDataCluster, guest});
    if (h.extended_l2) {
      MapExtended(h, host, Be64(data + j * 16 + 8), guest, guest + glen, out);
    } else if ((entry & kOflagZero) || host == 0) {
      Push(out, Extent{guest, glen, kZero, 0, 0});
    } else {
      MapData(h, host, guest, glen, out);
    }
  }
}

bool IsZero(const uint8_t* data, size_t len) {
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    uint64_t a, b, c, d;
    memcpy(&a, data + i, 8);
    memcpy(&b, data + i + 8, 8);
    memcpy(&c, data + i + 16, 8);
    memcpy(&d, data + i + 24, 8);
    if (a | b | c | d)
      return false;
  }
  for (; i < len; i++) {
    if (data[i])
      return false;
  }
  return true;
}

void DecompressCluster(const Header& h,
                       const uint8_t* in,
                       size_t in_len,
                       uint8_t* out,
                       size_t out_len,
                       uint64_t guest_offset) {
  const size_t cs = h.cluster_size;
  if (out_len < cs) {
    throw Error(kConvertFailed,
                Fmt("internal: %zu-byte buffer for a %zu-byte cluster", out_len, cs));
  }
  if (h.compression_type == 0) {
    // One inflate state per thread, reset per cluster (qemu inits one per cluster).
    struct Inflater {
      z_stream s{};
      bool ready = false;
      ~Inflater() {
        if (ready)
          inflateEnd(&s);
      }
    };
    thread_local Inflater z;
    if (!z.ready) {
      if (inflateInit2(&z.s, -12) != Z_OK)
        throw Error(kConvertFailed, "zlib init failed");
      z.ready = true;
    } else if (inflateReset(&z.s) != Z_OK) {
      throw Error(kConvertFailed, "zlib reset failed");
    }
    z_stream& s = z.s;
    s.next_in = const_cast<uint8_t*>(in);
    s.avail_in = uInt(in_len);
    s.next_out = out;
    s.avail_out = uInt(cs);
    int ret = inflate(&s, Z_FINISH);
    bool ok = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && s.avail_out == 0;
    if (!ok) {
      Invalid(
          Fmt("compressed cluster at guest offset %" PRIu64 " is corrupt (zlib)", guest_offset));
    }
    return;
  }
  struct Zstd {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~Zstd() { ZSTD_freeDCtx(ctx); }
  };
  thread_local Zstd z;
  ZSTD_DCtx* ctx = z.ctx;
  if (!ctx)
    throw Error(kConvertFailed, "zstd init failed");
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  ZSTD_inBuffer ib{in, in_len, 0};
  ZSTD_outBuffer ob{out, cs, 0};
  bool ok = true;
  while (ob.pos < ob.size) {
    size_t before_in = ib.pos, before_out = ob.pos;
    size_t r = ZSTD_decompressStream(ctx, &ob, &ib);
    if (ZSTD_isError(r) || (ib.pos == before_in && ob.pos == before_out)) {
      ok = false;
      break;
    }
  }
  if (!ok) {
    Invalid(Fmt("compressed cluster at guest offset %" PRIu64 " is corrupt (zstd)", guest_offset));
  }
}

void DecodeMarkerGrain(const uint8_t* in,
                       size_t in_len,
                       uint8_t* out,
                       size_t out_len,
                       size_t need,
                       uint64_t guest_offset) {
  if (in_len < 12)
    Invalid(Fmt("vmdk grain at guest offset %" PRIu64 " has a truncated marker", guest_offset));
  uint32_t size = uint32_t(in[8]) | (uint32_t(in[9]) << 8) | (uint32_t(in[10]) << 16) |
                  (uint32_t(in[11]) << 24);
  // The sequential converter places a grain by its marker's sector; a table that places it
  // elsewhere would make the two converters disagree, so the marker must name this grain.
  uint64_t lba = 0;
  for (int i = 7; i >= 0; i--)
    lba = (lba << 8) | in[i];
  if (lba != guest_offset / 512) {
    Invalid(Fmt("vmdk grain at guest offset %" PRIu64 " has a marker for sector %" PRIu64,
                guest_offset, lba));
  }
  if (size == 0 || size > in_len - 12) {
    Invalid(Fmt("vmdk grain at guest offset %" PRIu64 " has an invalid compressed size %" PRIu32,
                guest_offset, size));
  }
  struct Inflater {
    z_stream s{};
    bool ready = false;
    ~Inflater() {
      if (ready)
        inflateEnd(&s);
    }
  };
  thread_local Inflater z;
  if (!z.ready) {
    if (inflateInit(&z.s) != Z_OK)
      throw Error(kConvertFailed, "zlib init failed");
    z.ready = true;
  } else if (inflateReset(&z.s) != Z_OK) {
    throw Error(kConvertFailed, "zlib reset failed");
  }
  z_stream& s = z.s;
  s.next_in = const_cast<uint8_t*>(in + 12);
  s.avail_in = uInt(size);
  s.next_out = out;
  s.avail_out = uInt(out_len);
  int ret = inflate(&s, Z_FINISH);
  // Like qemu's uncompress(): the stream must end inside the grain and cover what is read.
  if (ret != Z_STREAM_END || out_len - s.avail_out < need) {
    Invalid(Fmt("vmdk grain at guest offset %" PRIu64 " is corrupt (bad deflate stream)",
                guest_offset));
  }
}

namespace {

void WriteSparse(const uint8_t* buf,
                 uint64_t guest_offset,
                 uint64_t len,
                 TargetWriter& writer,
                 ChunkStats& stats) {
  uint64_t run_start = 0;
  bool in_run = false;
  for (uint64_t off = 0; off < len; off += kSparseBlock) {
    uint64_t n = std::min<uint64_t>(kSparseBlock, len - off);
    bool zero = IsZero(buf + off, n);
    if (!zero && !in_run) {
      run_start = off;
      in_run = true;
    } else if (zero && in_run) {
      writer.Write(buf + run_start, off - run_start, guest_offset + run_start);
      stats.data_bytes_written += off - run_start;
      in_run = false;
    }
  }
  if (in_run) {
    writer.Write(buf + run_start, len - run_start, guest_offset + run_start);
    stats.data_bytes_written += len - run_start;
  }
  stats.zero_bytes = len - stats.data_bytes_written;
}

// Reads a group of compressed extents whose host bytes lie close together with one read.
size_t DecompressGroup(const Header& h,
                       const Extent* ex,
                       size_t i,
                       size_t count,
                       uint64_t guest_offset,
                       uint8_t* out,
                       HostReader& reader,
                       ChunkStats& stats,
                       std::vector<uint8_t>& in,
                       std::vector<uint8_t>& cluster) {
  constexpr uint64_t kMaxGap = 64 * 1024;
  constexpr uint64_t kMaxSpan = 8ull << 20;
  uint64_t start = ex[i].host;
  uint64_t end = ex[i].host + ex[i].host_len;
  size_t j = i + 1;
  while (j < count && ex[j].kind == kCompressed && ex[j].host >= start &&
         ex[j].host <= end + kMaxGap && ex[j].host + ex[j].host_len - start <= kMaxSpan) {
    end = std::max(end, ex[j].host + ex[j].host_len);
    j++;
  }
  in.resize(end - start);
  reader.Read(start, end - start, in.data());
  stats.bytes_read += end - start;
  for (size_t k = i; k < j; k++) {
    DecompressCluster(h, in.data() + (ex[k].host - start), ex[k].host_len, cluster.data(),
                      cluster.size(), ex[k].guest);
    memcpy(out + (ex[k].guest - guest_offset), cluster.data(), ex[k].length);
  }
  return j;
}

}  // namespace

ChunkStats ProcessChunk(const Header& h,
                        uint64_t guest_offset,
                        uint64_t guest_length,
                        const Extent* ex,
                        size_t count,
                        HostReader& reader,
                        TargetWriter& writer,
                        bool sparse) {
  ChunkStats stats;
  // Per-thread buffers, reused across chunks: a fresh multi-MiB allocation per chunk would be an
  // mmap/munmap pair and page faults under the process-wide mm lock each time.
  thread_local AlignedBuffer out;  // aligned: its writes may bypass the page cache
  thread_local std::vector<uint8_t> in;
  thread_local std::vector<uint8_t> cluster;
  // Only gaps and zero extents are cleared: data and compressed extents overwrite their range,
  // which saves a pass over the buffer for fully allocated chunks.
  out.Reserve(guest_length);
  uint64_t filled = 0;  // bytes of `out` before this offset are final
  for (size_t i = 0; i < count;) {
    const Extent& e = ex[i];
    if (e.guest < guest_offset || e.length > guest_length ||
        e.guest - guest_offset > guest_length - e.length || e.guest - guest_offset < filled) {
      throw Error(kConvertFailed, Fmt("internal: extent at guest offset %" PRIu64
                                      " lies outside its chunk or out of order",
                                      e.guest));
    }
    uint64_t rel = e.guest - guest_offset;
    memset(out.data() + filled, 0, rel - filled);
    filled = rel + e.length;
    if (e.kind == kData) {
      reader.Read(e.host, e.length, out.data() + (e.guest - guest_offset));
      stats.bytes_read += e.length;
      i++;
    } else if (e.kind == kCompressed) {
      if (e.length > h.cluster_size) {
        throw Error(kConvertFailed, "internal: compressed extent longer than a cluster");
      }
      // Per-thread: images with other cluster sizes ran on this thread before.
      if (cluster.size() != h.cluster_size)
        cluster.resize(h.cluster_size);
      // Only a run of compressed extents is grouped; others are validated above on their turn.
      size_t j = i + 1;
      for (uint64_t end_rel = filled; j < count && ex[j].kind == kCompressed; j++) {
        const Extent& f = ex[j];
        if (f.guest < guest_offset || f.length > h.cluster_size ||
            f.guest - guest_offset > guest_length - f.length || f.guest - guest_offset < end_rel) {
          throw Error(kConvertFailed, "internal: extent lies outside its chunk or out of order");
        }
        end_rel = f.guest - guest_offset + f.length;
      }
      // The group may stop early (host bytes far apart); the rest comes on the next turn.
      size_t k = DecompressGroup(h, ex, i, j, guest_offset, out.data(), reader, stats, in, cluster);
      for (size_t m = i + 1; m < k; m++) {
        uint64_t mrel = ex[m].guest - guest_offset;
        memset(out.data() + filled, 0, mrel - filled);
        filled = mrel + ex[m].length;
      }
      i = k;
    } else if (e.kind == kMarkerGrain) {
      if (e.length > h.cluster_size)
        throw Error(kConvertFailed, "internal: vmdk grain extent longer than a grain");
      if (cluster.size() != h.cluster_size)
        cluster.resize(h.cluster_size);
      in.resize(e.host_len);
      reader.Read(e.host, e.host_len, in.data());
      stats.bytes_read += e.host_len;
      DecodeMarkerGrain(in.data(), in.size(), cluster.data(), cluster.size(), e.length, e.guest);
      memcpy(out.data() + rel, cluster.data(), e.length);
      i++;
    } else {
      memset(out.data() + rel, 0, e.length);
      i++;
    }
  }
  memset(out.data() + filled, 0, guest_length - filled);
  if (sparse) {
    WriteSparse(out.data(), guest_offset, guest_length, writer, stats);
  } else {
    writer.Write(out.data(), guest_length, guest_offset);
    stats.data_bytes_written = guest_length;
  }
  // Keep the per-thread buffers for the usual chunk sizes only.
  constexpr size_t kKeepBytes = 8u << 20;
  if (out.capacity() > kKeepBytes)
    out.Release();
  if (in.capacity() > kKeepBytes)
    std::vector<uint8_t>().swap(in);
  return stats;
}

}  // namespace qcow2
