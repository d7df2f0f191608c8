// SPDX-License-Identifier: Apache-2.0
#include "image_format.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "parse_util.h"

namespace imgfmt {
namespace {

using qcow2::kImageBackingFile;
using qcow2::kImageInvalid;
using qcow2::kImageUnsupportedFeature;

constexpr uint32_t kVdiSignature = 0xbeda107f;
constexpr uint32_t kVdiVersion11 = 0x00010001;
constexpr uint32_t kVdiUnallocated = 0xffffffff;
constexpr uint32_t kVdiDiscarded = 0xfffffffe;
constexpr uint64_t kVdiBlockSize = 1 << 20;

constexpr uint32_t kVhdFixed = 2;
constexpr uint32_t kVhdDynamic = 3;
constexpr uint32_t kVhdDifferencing = 4;
constexpr uint64_t kVhdMaxGeometry = 65535ull * 16 * 255;
constexpr uint64_t kVhdMaxSectors = 0xff000000ull;
constexpr uint32_t kVhdUnallocated = 0xffffffff;
constexpr uint64_t kVhdFixedBlock = 2 << 20;  // pseudo-blocks of a fixed VHD

constexpr uint32_t kVmdkMagic = 0x564d444b;  // "KDMV" little-endian
constexpr uint64_t kVmdkGdAtEnd = ~0ull;
constexpr uint32_t kVmdkFlagZeroGrain = 1u << 2;
constexpr uint32_t kVmdkFlagMarkers = 1u << 17;
constexpr uint32_t kVmdkMarkerFooter = 3;
constexpr uint32_t kVmdkMaxGranularity = 2048;  // sectors: 1 MiB grains
constexpr uint32_t kVmdkMaxGtes = 512;          // qemu: "L2 table size too big"

using parse::Be16;
using parse::Be32;
using parse::Be64;
using parse::Fmt;
using parse::InFile;
using parse::Invalid;
using parse::Le16;
using parse::Le32;
using parse::Le64;

bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i])
      return false;
  }
  return true;
}

void CheckTable(const Image& im, const char* what) {
  if (im.file_size != kUnknownSize && !InFile(im.table.offset, im.table.length, im.file_size)) {
    Invalid(Fmt("%s at offset %" PRIu64 " (%" PRIu64
                " bytes) extends past the end of the file (%" PRIu64 " bytes)",
                what, im.table.offset, im.table.length, im.file_size));
  }
}

void CheckVirtualSize(const char* fmt, uint64_t size) {
  if (size > kMaxVirtualSize) {
    Invalid(Fmt("%s virtual size %" PRIu64 " exceeds the supported maximum of 64 TiB", fmt, size));
  }
}

Image ParseVdi(const uint8_t* h, size_t len, uint64_t file_size) {
  Image im;
  im.format = Format::kVdi;
  im.file_size = file_size;
  if (len < 512)
    Invalid(Fmt("image too short for a vdi header: %zu bytes", len));
  if (Le32(h + 64) != kVdiSignature)
    Invalid("not a vdi image: bad signature");
  uint32_t version = Le32(h + 68);
  if (version != kVdiVersion11) {
    throw Error(kImageUnsupportedFeature, Fmt("unsupported vdi version %" PRIu32 ".%" PRIu32,
                                              version >> 16, version & 0xffff));
  }
  uint32_t type = Le32(h + 76);
  uint32_t offset_bmap = Le32(h + 340);
  uint32_t offset_data = Le32(h + 344);
  uint32_t sector_size = Le32(h + 360);
  uint64_t disk_size = Le64(h + 368);
  uint32_t block_size = Le32(h + 376);
  uint32_t block_extra = Le32(h + 380);
  uint32_t blocks = Le32(h + 384);
  if (type == 1) {
    im.subformat = "dynamic";
  } else if (type == 2) {
    im.subformat = "static";
  } else if (type == 4) {
    im.subformat = "diff";
  } else {
    throw Error(kImageUnsupportedFeature, Fmt("unsupported vdi image type %" PRIu32, type));
  }
  if (offset_bmap % 512 != 0)
    Invalid(Fmt("vdi block map offset %" PRIu32 " is not sector aligned", offset_bmap));
  if (offset_data % 512 != 0)
    Invalid(Fmt("vdi data offset %" PRIu32 " is not sector aligned", offset_data));
  if (sector_size != 512)
    Invalid(Fmt("vdi sector size %" PRIu32 " is not 512", sector_size));
  if (block_size == 0 || !IsPowerOfTwo(block_size)) {
    Invalid(Fmt("vdi block size %" PRIu32 " is not a power of two", block_size));
  }
  if (block_size != kVdiBlockSize) {
    throw Error(
        kImageUnsupportedFeature,
        Fmt("unsupported vdi block size %" PRIu32 " (qemu reads 1 MiB blocks only)", block_size));
  }
  if (block_extra != 0) {
    throw Error(kImageUnsupportedFeature,
                Fmt("unsupported vdi block extra data of %" PRIu32 " bytes", block_extra));
  }
  CheckVirtualSize("vdi", disk_size);
  // VBoxManage may write odd sizes; qemu rounds up to a sector.
  im.virtual_size = (disk_size + 511) & ~uint64_t(511);
  if (blocks > kMaxMapEntries)
    Invalid(Fmt("vdi block map of %" PRIu32 " entries is too large", blocks));
  if (im.virtual_size > uint64_t(blocks) * block_size) {
    Invalid(Fmt("vdi disk size %" PRIu64 " exceeds its %" PRIu32 " blocks of %" PRIu32 " bytes",
                im.virtual_size, blocks, block_size));
  }
  im.block_size = block_size;
  im.block_count = (im.virtual_size + block_size - 1) / block_size;
  im.data_offset = offset_data;
  im.table = {offset_bmap, im.block_count * 4};
  CheckTable(im, "vdi block map");
  if (!AllZero(h + 424, 16) || !AllZero(h + 440, 16) || type == 4) {
    im.refusal_code = kImageBackingFile;
    im.refusal_message =
        "vdi image is a differencing image with a parent; parents are never opened";
  }
  return im;
}

// qemu's vpc_open rule for the disk size (documented in docs/adr/0012).
uint64_t VhdSectors(const uint8_t* f) {
  uint64_t chs = uint64_t(Be16(f + 56)) * f[58] * f[59];
  const uint8_t* app = f + 28;
  bool use_chs = memcmp(app, "win ", 4) != 0 && memcmp(app, "qem2", 4) != 0 &&
                 memcmp(app, "d2v ", 4) != 0 && memcmp(app, "CTXS", 4) != 0 &&
                 memcmp(app, "tap\0", 4) != 0;
  if (!use_chs || chs == kVhdMaxGeometry)
    return Be64(f + 48) / 512;
  return chs;
}

Image ParseVhd(const uint8_t* head,
               size_t head_len,
               const uint8_t* tail,
               size_t tail_len,
               uint64_t file_size) {
  Image im;
  im.format = Format::kVhd;
  im.file_size = file_size;
  const uint8_t* f = nullptr;
  if (head_len >= 512 && memcmp(head, "conectix", 8) == 0) {
    f = head;
  } else if (tail_len >= 512 && memcmp(tail + tail_len - 512, "conectix", 8) == 0) {
    f = tail + tail_len - 512;
    im.footer_at_end = true;
  } else {
    Invalid("not a vhd image: no 'conectix' footer at the start or the end");
  }
  for (int i = 0; i < 4; i++) {
    uint8_t c = f[28 + i];
    im.creator.push_back(c >= 0x20 && c < 0x7f ? char(c) : '?');
  }
  uint32_t type = Be32(f + 60);
  uint64_t sectors = VhdSectors(f);
  if (sectors > kVhdMaxSectors) {
    Invalid(Fmt("vhd disk of %" PRIu64 " sectors exceeds the format's 2040 GiB", sectors));
  }
  im.virtual_size = sectors * 512;
  CheckVirtualSize("vhd", im.virtual_size);
  if (type == kVhdFixed) {
    im.subformat = "fixed";
    im.fixed = true;
    im.block_size = kVhdFixedBlock;
    im.block_count = (im.virtual_size + kVhdFixedBlock - 1) / kVhdFixedBlock;
    return im;
  }
  if (type != kVhdDynamic && type != kVhdDifferencing) {
    Invalid(Fmt("unknown vhd disk type %" PRIu32, type));
  }
  im.subformat = type == kVhdDynamic ? "dynamic" : "differencing";
  if (im.footer_at_end) {
    Invalid("dynamic vhd image has no footer copy at offset 0");
  }
  uint64_t dyn = Be64(f + 16);
  if (dyn > head_len || head_len - dyn < 1024) {
    Invalid(Fmt("vhd dynamic header at offset %" PRIu64 " is not in the first %zu bytes", dyn,
                head_len));
  }
  const uint8_t* d = head + dyn;
  if (memcmp(d, "cxsparse", 8) != 0)
    Invalid(Fmt("vhd dynamic header at offset %" PRIu64 " has no 'cxsparse' cookie", dyn));
  uint64_t table_offset = Be64(d + 16);
  uint32_t max_entries = Be32(d + 28);
  uint32_t block_size = Be32(d + 32);
  if (block_size < 512 || !IsPowerOfTwo(block_size)) {
    Invalid(Fmt("vhd block size %" PRIu32 " is not a power of two of at least 512", block_size));
  }
  if (block_size > (256u << 20))
    Invalid(Fmt("vhd block size %" PRIu32 " is too large", block_size));
  im.block_size = block_size;
  im.block_count = (im.virtual_size + block_size - 1) / block_size;
  if (max_entries < im.block_count) {
    Invalid(Fmt("vhd block table of %" PRIu32 " entries is too small for %" PRIu64 " bytes",
                max_entries, im.virtual_size));
  }
  if (im.block_count > kMaxMapEntries)
    Invalid(Fmt("vhd block table of %" PRIu64 " entries is too large", im.block_count));
  // Sector bitmap before each block, padded to a sector (qemu's bitmap_size).
  im.data_offset = ((block_size / (8 * 512)) + 511) & ~uint64_t(511);
  im.table = {table_offset, im.block_count * 4};
  CheckTable(im, "vhd block allocation table");
  if (type == kVhdDifferencing) {
    im.refusal_code = kImageBackingFile;
    im.refusal_message = "vhd image is a differencing disk with a parent; parents are never opened";
  }
  return im;
}

// Reads the VMDK4 header fields at `p` (magic included) into `im`.
void ReadVmdkHeader(const uint8_t* p, Image& im, uint64_t& gd_offset, uint32_t& flags) {
  uint32_t version = Le32(p + 4);
  flags = Le32(p + 8);
  uint64_t capacity = Le64(p + 12);
  uint64_t granularity = Le64(p + 20);
  uint32_t gtes = Le32(p + 44);
  gd_offset = Le64(p + 56);
  uint64_t grain_offset = Le64(p + 64);
  uint16_t compress = Le16(p + 77);
  if (version < 1 || version > 3)
    throw Error(kImageUnsupportedFeature, Fmt("unsupported vmdk version %" PRIu32, version));
  if (compress > 1) {
    throw Error(kImageUnsupportedFeature,
                Fmt("unsupported vmdk compression algorithm %" PRIu32, uint32_t(compress)));
  }
  im.compressed = compress == 1;
  if (im.compressed && !(flags & kVmdkFlagMarkers)) {
    throw Error(kImageUnsupportedFeature,
                "compressed vmdk grains without markers are not supported");
  }
  if (granularity == 0 || !IsPowerOfTwo(granularity) || granularity > kVmdkMaxGranularity) {
    Invalid(Fmt("vmdk grain size of %" PRIu64 " sectors is not a power of two up to %" PRIu32,
                granularity, kVmdkMaxGranularity));
  }
  if (gtes == 0 || gtes > kVmdkMaxGtes) {
    Invalid(Fmt("vmdk grain table of %" PRIu32 " entries (1 to %" PRIu32 " allowed)", gtes,
                kVmdkMaxGtes));
  }
  if (capacity > kMaxVirtualSize / 512) {
    Invalid(Fmt("vmdk capacity of %" PRIu64 " sectors exceeds the supported maximum of 64 TiB",
                capacity));
  }
  if (grain_offset > (kMaxVirtualSize >> 9))
    Invalid(Fmt("vmdk grain offset %" PRIu64 " is out of range", grain_offset));
  im.virtual_size = capacity * 512;
  im.block_size = granularity * 512;
  im.block_count = (capacity + granularity - 1) / granularity;
  im.gt_entries = gtes;
  im.grain_offset = grain_offset * 512;
  im.zero_grain = (flags & kVmdkFlagZeroGrain) != 0;
  if (im.block_count > kMaxMapEntries) {
    Invalid(Fmt("vmdk grain map of %" PRIu64 " entries is too large", im.block_count));
  }
}

// Finds `key` at the start of a line of the embedded descriptor.
bool DescriptorValue(const std::string& desc, const char* key, std::string& value) {
  size_t pos = 0;
  const size_t klen = strlen(key);
  while (pos < desc.size()) {
    size_t eol = desc.find('\n', pos);
    if (eol == std::string::npos)
      eol = desc.size();
    if (desc.compare(pos, klen, key) == 0) {
      size_t v = pos + klen;
      while (v < eol && (desc[v] == ' ' || desc[v] == '='))
        v++;
      value = desc.substr(v, eol - v);
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      while (!value.empty() && (value.back() == '\r' || value.back() == ' '))
        value.pop_back();
      return true;
    }
    pos = eol + 1;
  }
  return false;
}

Image ParseVmdk(const uint8_t* head,
                size_t head_len,
                const uint8_t* tail,
                size_t tail_len,
                uint64_t file_size) {
  Image im;
  im.format = Format::kVmdk;
  im.file_size = file_size;
  if (head_len < 512)
    Invalid(Fmt("image too short for a vmdk header: %zu bytes", head_len));
  if (Le32(head) != kVmdkMagic)
    Invalid("not a vmdk sparse extent: bad magic");
  uint64_t gd_offset = 0;
  uint32_t flags = 0;
  ReadVmdkHeader(head, im, gd_offset, flags);
  uint64_t desc_offset = Le64(head + 28);
  uint64_t desc_size = Le64(head + 36);
  // Only streamOptimized images put their directory in a footer. A stream cannot read a footer
  // before the data, so a monolithicSparse one claiming it would read as all zeros there while
  // random access found the footer: one verdict for every converter is a refusal.
  if (gd_offset == kVmdkGdAtEnd && !im.compressed)
    Invalid("vmdk image announces its grain directory at the end but is not streamOptimized");
  if (gd_offset == kVmdkGdAtEnd) {
    // streamOptimized: the footer (marker, header, end-of-stream marker) holds the real header.
    if (file_size != kUnknownSize) {
      if (tail_len < 1536 || file_size < 1536 + 512)
        Invalid("vmdk image announces its grain directory at the end but has no footer");
      const uint8_t* m = tail + tail_len - 1536;
      if (Le32(m + 8) != 0 || Le32(m + 12) != kVmdkMarkerFooter || Le32(m + 512) != kVmdkMagic ||
          Le32(m + 1024 + 8) != 0 || Le32(m + 1024 + 12) != 0) {
        Invalid("vmdk footer is missing or corrupt");
      }
      Image footer;
      ReadVmdkHeader(m + 512, footer, gd_offset, flags);
      if (gd_offset == kVmdkGdAtEnd)
        Invalid("vmdk footer does not locate the grain directory");
      footer.format = im.format;
      footer.file_size = file_size;
      im = footer;
    } else {
      gd_offset = 0;
    }
  }
  im.subformat = im.compressed ? "streamOptimized" : "monolithicSparse";
  if (desc_offset != 0 && desc_size != 0 && desc_offset <= head_len / 512 &&
      desc_size <= head_len / 512 - desc_offset) {
    const char* p = reinterpret_cast<const char*>(head + desc_offset * 512);
    std::string desc(p, strnlen(p, desc_size * 512));
    std::string value;
    if (DescriptorValue(desc, "createType", value) && !value.empty() && value.size() < 64)
      im.subformat = parse::Printable(value);
    if (DescriptorValue(desc, "parentFileNameHint", value)) {
      im.refusal_code = kImageBackingFile;
      im.refusal_message = "vmdk image has a parent '" + parse::Printable(value.substr(0, 256)) +
                           "'; parents are never opened";
    }
  }
  if (gd_offset != 0) {
    if (gd_offset > (kMaxVirtualSize >> 9))
      Invalid(Fmt("vmdk grain directory offset %" PRIu64 " is out of range", gd_offset));
    // An empty disk needs no directory (nothing is read), in a stream or not.
    if (im.block_count > 0) {
      uint64_t gd_entries = (im.block_count + im.gt_entries - 1) / im.gt_entries;
      im.table = {gd_offset * 512, gd_entries * 4};
      CheckTable(im, "vmdk grain directory");
    }
  } else if (im.block_count > 0 && (file_size != kUnknownSize || !im.compressed)) {
    // A stream of a streamOptimized image reads its grains by their markers; anything else
    // without a directory has nowhere to find its grains, whether or not the size is known.
    Invalid("vmdk image has no grain directory");
  }
  return im;
}

// CRC-32C (Castagnoli), as VHDX checksums its headers and region tables.
uint32_t Crc32c(const uint8_t* p, size_t n, size_t skip_at) {
  uint32_t crc = ~0u;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = (i >= skip_at && i < skip_at + 4) ? 0 : p[i];  // the checksum field reads as 0
    crc ^= b;
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

// A GUID as VHDX stores it: the first three fields little-endian.
bool GuidIs(const uint8_t* p, const char* text) {
  uint8_t g[16];
  int n = 0;
  for (const char* c = text; *c && n < 32; c++) {
    if (*c == '-')
      continue;
    int v = (*c >= '0' && *c <= '9') ? *c - '0' : (*c | 0x20) - 'a' + 10;
    if (n % 2 == 0)
      g[n / 2] = uint8_t(v << 4);
    else
      g[n / 2] |= uint8_t(v);
    n++;
  }
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; i++) {
    if (p[i] != g[order[i]])
      return false;
  }
  return true;
}

constexpr const char* kVhdxBatGuid = "2dc27766-f623-4200-9d64-115e9bfd4a08";
constexpr const char* kVhdxMetadataGuid = "8b7ca206-4790-4b9a-b8fe-575f050f886e";
constexpr const char* kVhdxFileParameters = "caa16737-fa36-4d43-b3b6-33f0aa44e76b";
constexpr const char* kVhdxVirtualDiskSize = "2fa54224-cd1b-4876-b211-5dbed83bf4b8";
constexpr const char* kVhdxLogicalSectorSize = "8141bf1d-a96f-4709-ba47-f233a8faab5f";
constexpr uint64_t kVhdxMaxMetadata = 16 << 20;

Image ParseVhdx(const uint8_t* h, size_t len, uint64_t file_size) {
  Image im;
  im.format = Format::kVhdx;
  im.file_size = file_size;
  if (len < kVhdxHeadBytes)
    Invalid(Fmt("image too short for the vhdx headers and region table: %zu bytes", len));
  if (memcmp(h, "vhdxfile", 8) != 0)
    Invalid("not a vhdx image: bad file identifier");
  const uint8_t* best = nullptr;
  for (size_t off : {size_t(64 * 1024), size_t(128 * 1024)}) {
    const uint8_t* hd = h + off;
    if (memcmp(hd, "head", 4) != 0 || Crc32c(hd, 4096, 4) != Le32(hd + 4))
      continue;
    if (best == nullptr || Le64(hd + 8) > Le64(best + 8))
      best = hd;
  }
  if (best == nullptr)
    Invalid("no valid vhdx header (both headers have a bad signature or checksum)");
  if (Le16(best + 66) != 1)
    throw Error(kImageUnsupportedFeature,
                Fmt("unsupported vhdx version %" PRIu32, uint32_t(Le16(best + 66))));
  if (!AllZero(best + 48, 16)) {
    throw Error(kImageUnsupportedFeature,
                "vhdx image has a log that needs to be replayed (it was not closed cleanly); "
                "open it once with Hyper-V or qemu-img check -r all");
  }
  const uint8_t* rt = h + 192 * 1024;
  if (memcmp(rt, "regi", 4) != 0 || Crc32c(rt, 64 * 1024, 4) != Le32(rt + 4))
    Invalid("vhdx region table has a bad signature or checksum");
  uint32_t count = Le32(rt + 8);
  if (count > 2047)
    Invalid(Fmt("vhdx region table has %" PRIu32 " entries (at most 2047)", count));
  Range meta{0, 0};
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* e = rt + 16 + i * 32;
    Range r{Le64(e + 16), Le32(e + 24)};
    bool required = (Le32(e + 28) & 1) != 0;
    if (r.offset % (1 << 20) != 0 || r.length % (1 << 20) != 0 || r.length == 0)
      Invalid(Fmt("vhdx region at offset %" PRIu64 " is not 1 MiB aligned", r.offset));
    if (file_size != kUnknownSize && !InFile(r.offset, r.length, file_size)) {
      Invalid(Fmt("vhdx region at offset %" PRIu64 " (%" PRIu64
                  " bytes) extends past the end of the file (%" PRIu64 " bytes)",
                  r.offset, r.length, file_size));
    }
    if (GuidIs(e, kVhdxBatGuid))
      im.bat = r;
    else if (GuidIs(e, kVhdxMetadataGuid))
      meta = r;
    else if (required)
      throw Error(kImageUnsupportedFeature, "vhdx image needs an unknown region");
  }
  if (im.bat.length == 0 || meta.length == 0)
    Invalid("vhdx region table lacks the block allocation table or the metadata region");
  // Like qemu's vhdx_region_check: the header area, the log, the BAT and the metadata are
  // disjoint.
  const Range regions[] = {{0, 1 << 20}, {Le64(best + 72), Le32(best + 68)}, im.bat, meta};
  for (size_t i = 0; i < 4; i++) {
    for (size_t j = i + 1; j < 4; j++) {
      const Range& a = regions[i];
      const Range& b = regions[j];
      if (a.length > 0 && b.length > 0 && a.offset < b.offset + b.length &&
          b.offset < a.offset + a.length) {
        Invalid(
            Fmt("vhdx regions at offsets %" PRIu64 " and %" PRIu64 " overlap", a.offset, b.offset));
      }
    }
  }
  im.subformat = "dynamic";
  im.table = {meta.offset, std::min<uint64_t>(meta.length, kVhdxMaxMetadata)};
  return im;
}

}  // namespace

Image ParseImage(Format format,
                 const uint8_t* head,
                 size_t head_len,
                 const uint8_t* tail,
                 size_t tail_len,
                 uint64_t file_size) {
  if (file_size != kUnknownSize) {
    head_len = size_t(std::min<uint64_t>(head_len, file_size));
    tail_len = size_t(std::min<uint64_t>(tail_len, file_size));
  }
  switch (format) {
    case Format::kVdi:
      return ParseVdi(head, head_len, file_size);
    case Format::kVhd:
      return ParseVhd(head, head_len, tail, tail_len, file_size);
    case Format::kVmdk:
      return ParseVmdk(head, head_len, tail, tail_len, file_size);
    case Format::kVhdx:
      return ParseVhdx(head, head_len, file_size);
  }
  Invalid("unknown image format");
}

BlockMap::BlockMap(const Image& image) : image_(image) {
  if (image_.table.length > 0 && (image_.block_count > 0 || image_.format == Format::kVhdx))
    needs_.push_back(image_.table);
  if (image_.fixed)
    return;  // no map: guest byte n is file byte n
  using qcow2::Owner;
  using qcow2::Use;
  if (image_.format == Format::kVhdx) {
    // The header area and the regions (ParseVhdx found them disjoint); blocks must avoid them.
    claims_.Claim(0, 1 << 20, Owner{Use::kHeader, 0});
    claims_.Claim(image_.bat.offset, image_.bat.length, Owner{Use::kRegion, image_.bat.offset});
    claims_.Claim(image_.table.offset, image_.table.length,
                  Owner{Use::kRegion, image_.table.offset});
    return;
  }
  claims_.Claim(0, 512, Owner{Use::kHeader, 0});
  if (image_.table.length > 0) {
    const Use use = image_.format == Format::kVmdk ? Use::kGrainDirectory : Use::kBlockTable;
    claims_.Claim(image_.table.offset, image_.table.length, Owner{use, 0});
  }
  if (image_.format != Format::kVmdk && !image_.fixed)
    entries_.assign(image_.block_count, 0xffffffffu);
}

void BlockMap::LoadEntries(const uint8_t* data,
                           size_t len,
                           uint64_t first,
                           uint64_t count,
                           bool be) {
  if (len < count * 4)
    Invalid(Fmt("block table truncated: %zu of %" PRIu64 " bytes", len, count * 4));
  for (uint64_t i = 0; i < count && first + i < entries_.size(); i++)
    entries_[first + i] = be ? Be32(data + i * 4) : Le32(data + i * 4);
}

void BlockMap::LoadGd(const uint8_t* data) {
  const uint64_t n = image_.table.length / 4;
  gd_slot_.assign(n, 0);
  const uint64_t gt_bytes = image_.gt_entries * 4;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t sector = Le32(data + i * 4);
    if (sector == 0)
      continue;
    uint64_t off = sector * 512;
    if (image_.file_size != kUnknownSize && !InFile(off, gt_bytes, image_.file_size)) {
      Invalid(Fmt("vmdk grain table %" PRIu64 " at offset %" PRIu64
                  " extends past the end of the file (%" PRIu64 " bytes)",
                  i, off, image_.file_size));
    }
    // Two GD entries naming one grain table, or tables overlapping anything, are refused.
    claims_.Claim(off, gt_bytes, qcow2::Owner{qcow2::Use::kGrainTable, i});
    auto it = std::find_if(gts_.begin(), gts_.end(), [&](const auto& g) { return g.first == off; });
    if (it == gts_.end())
      gts_.push_back({off, {i}});
    else
      it->second.push_back(i);
  }
  std::sort(gts_.begin(), gts_.end());
  for (const auto& g : gts_)
    needs_.push_back({g.first, gt_bytes});
}

void BlockMap::Feed(uint64_t offset, const uint8_t* data, size_t len) {
  auto it = std::find_if(needs_.begin(), needs_.end(),
                         [&](const Range& r) { return r.offset == offset; });
  if (it == needs_.end())
    Invalid(Fmt("internal: no table is expected at offset %" PRIu64, offset));
  if (len < it->length)
    Invalid(Fmt("table at offset %" PRIu64 " truncated: %zu of %" PRIu64 " bytes", offset, len,
                it->length));
  const bool first_level = !gd_loaded_ && offset == image_.table.offset;
  needs_.erase(it);
  if (image_.format == Format::kVhdx) {
    if (first_level) {
      gd_loaded_ = true;
      LoadVhdxMetadata(data, len);
    } else {
      LoadVhdxBat(data);
    }
  } else if (image_.format == Format::kVmdk) {
    if (first_level) {
      gd_loaded_ = true;
      LoadGd(data);
    } else {
      auto gt =
          std::find_if(gts_.begin(), gts_.end(), [&](const auto& g) { return g.first == offset; });
      const uint32_t slot = uint32_t(gt_data_.size() / image_.gt_entries);
      for (uint64_t e = 0; e < image_.gt_entries; e++)
        gt_data_.push_back(Le32(data + e * 4));
      for (uint64_t gd_index : gt->second)
        gd_slot_[gd_index] = slot + 1;
      gts_.erase(gt);
    }
  } else {
    LoadEntries(data, len, 0, image_.block_count, image_.format == Format::kVhd);
  }
  if (needs_.empty())
    Validate();
}

void BlockMap::LoadVhdxMetadata(const uint8_t* data, size_t len) {
  Image& im = image_;
  if (memcmp(data, "metadata", 8) != 0)
    Invalid("vhdx metadata region has a bad signature");
  uint32_t count = Le16(data + 10);
  if (count > 2047 || 32 + uint64_t(count) * 32 > len)
    Invalid(Fmt("vhdx metadata table has %" PRIu32 " entries", count));
  const uint8_t* params = nullptr;
  const uint8_t* vsize = nullptr;
  const uint8_t* lss = nullptr;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* e = data + 32 + i * 32;
    uint64_t off = Le32(e + 16);
    uint64_t n = Le32(e + 20);
    bool required = (Le32(e + 24) & 4) != 0;
    if (n == 0)
      continue;
    if (!InFile(off, n, len))
      Invalid(Fmt("vhdx metadata item at offset %" PRIu64 " lies outside its region", off));
    const uint8_t* p = data + off;
    if (GuidIs(e, kVhdxFileParameters) && n >= 8)
      params = p;
    else if (GuidIs(e, kVhdxVirtualDiskSize) && n >= 8)
      vsize = p;
    else if (GuidIs(e, kVhdxLogicalSectorSize) && n >= 4)
      lss = p;
    else if (required && (Le32(e + 24) & 2) == 0)
      throw Error(kImageUnsupportedFeature, "vhdx image needs an unknown metadata item");
  }
  if (params == nullptr || vsize == nullptr || lss == nullptr)
    Invalid("vhdx metadata lacks the file parameters, disk size or logical sector size");
  uint32_t block_size = Le32(params);
  bool has_parent = (Le32(params + 4) & 2) != 0;
  if (Le32(params + 4) & 1)
    im.subformat = "fixed";  // "leave blocks allocated"
  uint64_t size = Le64(vsize);
  uint32_t sector = Le32(lss);
  if (block_size < (1u << 20) || block_size > (256u << 20) || !IsPowerOfTwo(block_size)) {
    Invalid(
        Fmt("vhdx block size %" PRIu32 " is not a power of two from 1 MiB to 256 MiB", block_size));
  }
  if (sector != 512 && sector != 4096)
    Invalid(Fmt("vhdx logical sector size %" PRIu32 " is neither 512 nor 4096", sector));
  CheckVirtualSize("vhdx", size);
  im.virtual_size = size / 512 * 512;
  im.block_size = block_size;
  im.block_count = (im.virtual_size + block_size - 1) / block_size;
  im.chunk_ratio = ((uint64_t(1) << 23) * sector) / block_size;
  if (im.block_count > kMaxMapEntries)
    Invalid(Fmt("vhdx block table of %" PRIu64 " entries is too large", im.block_count));
  if (has_parent) {
    im.subformat = "differencing";
    im.refusal_code = kImageBackingFile;
    im.refusal_message =
        "vhdx image is a differencing disk with a parent; parents are never opened";
  }
  entries_.assign(im.block_count, 0);
  if (im.block_count == 0)
    return;
  uint64_t bat_entries = im.block_count + (im.block_count - 1) / im.chunk_ratio;
  if (bat_entries * 8 > im.bat.length) {
    Invalid(Fmt("vhdx block allocation table of %" PRIu64 " bytes is too small for %" PRIu64
                " entries",
                im.bat.length, bat_entries));
  }
  needs_.push_back({im.bat.offset, bat_entries * 8});
}

void BlockMap::LoadVhdxBat(const uint8_t* data) {
  const Image& im = image_;
  for (uint64_t i = 0; i < im.block_count; i++) {
    uint64_t e = Le64(data + (i + i / im.chunk_ratio) * 8);
    uint32_t state = uint32_t(e & 7);
    if (state == 6) {
      uint64_t mb = e >> 20;
      if (mb == 0 || mb > 0xffffffffull)
        Invalid(Fmt("vhdx block %" PRIu64 " has an invalid file offset", i));
      entries_[i] = uint32_t(mb);
    } else if (state == 7) {
      throw Error(kImageUnsupportedFeature,
                  Fmt("vhdx block %" PRIu64 " is partially present (differencing disk)", i));
    } else if (state > 3) {
      Invalid(Fmt("vhdx block %" PRIu64 " has an invalid state %" PRIu32, i, state));
    } else {
      entries_[i] = 0;
    }
  }
}

uint64_t BlockMap::BlockHost(uint64_t i) const {
  const Image& im = image_;
  if (im.fixed)
    return i * im.block_size;
  if (im.format == Format::kVmdk)
    return GrainHost(i);
  if (entries_.empty())
    return 0;
  uint32_t e = entries_[i];
  switch (im.format) {
    case Format::kVdi:
      if (e == kVdiUnallocated || e == kVdiDiscarded)
        return 0;
      return im.data_offset + uint64_t(e) * im.block_size;
    case Format::kVhd:
      if (e == kVhdUnallocated)
        return 0;
      return uint64_t(e) * 512 + im.data_offset;
    case Format::kVhdx:
      return uint64_t(e) << 20;
    case Format::kVmdk:
      break;
  }
  return 0;
}

uint64_t BlockMap::GrainHost(uint64_t i) const {
  const uint64_t g = i / image_.gt_entries;
  if (g >= gd_slot_.size() || gd_slot_[g] == 0)
    return 0;
  uint32_t e = gt_data_[(gd_slot_[g] - 1) * image_.gt_entries + i % image_.gt_entries];
  if (e == 0 || (e == 1 && image_.zero_grain))
    return 0;
  return uint64_t(e) * 512;
}

void BlockMap::CheckBlock(uint64_t i) {
  const Image& im = image_;
  uint64_t host = BlockHost(i);
  if (host == 0) {
    // A VDI block allocated at file offset 0 (data offset 0, entry 0) is the header itself:
    // qemu reads it as data, and BlockHost cannot tell it from an unallocated block.
    if (im.format == Format::kVdi && !entries_.empty() && entries_[i] != kVdiUnallocated &&
        entries_[i] != kVdiDiscarded) {
      claims_.Claim(0, im.block_size, qcow2::Owner{qcow2::Use::kBlock, i});
    }
    return;
  }
  uint64_t need = 1;
  if (im.format == Format::kVhd || im.format == Format::kVhdx)
    need = im.block_size;  // qemu: "the image has been truncated"
  else if (im.compressed)
    need = 12;
  if (im.file_size != kUnknownSize && !InFile(host, need, im.file_size)) {
    Invalid(Fmt("block %" PRIu64 " (guest offset %" PRIu64 ") at offset %" PRIu64
                " lies past the end of the file (%" PRIu64 " bytes)",
                i, i * im.block_size, host, im.file_size));
  }
  // The bytes a block owns: a VHD block's sector bitmap comes first; a streamOptimized grain is
  // at least its marker sector (its compressed length is in the marker).
  uint64_t start = host;
  uint64_t length = im.block_size;
  if (im.format == Format::kVhd) {
    start = host - im.data_offset;
    length += im.data_offset;
  } else if (im.compressed) {
    length = 512;
  }
  claims_.Claim(start, length, qcow2::Owner{qcow2::Use::kBlock, i});
}

void BlockMap::Validate() {
  const Image& im = image_;
  if (im.format == Format::kVmdk) {
    // Only the grains of loaded tables can be allocated.
    for (uint64_t g = 0; g < gd_slot_.size(); g++) {
      if (gd_slot_[g] == 0)
        continue;
      uint64_t first = g * im.gt_entries;
      uint64_t end = std::min(im.block_count, first + im.gt_entries);
      for (uint64_t i = first; i < end; i++)
        CheckBlock(i);
    }
  } else {
    for (uint64_t i = 0; i < entries_.size(); i++)
      CheckBlock(i);
  }
}

void BlockMap::Map(uint64_t first, uint64_t count, std::vector<Extent>& out) const {
  const Image& im = image_;
  if (!Complete())
    Invalid("internal: block map used before its tables were read");
  uint64_t end = std::min(im.block_count, first + std::min(count, im.block_count));
  for (uint64_t i = first; i < end; i++) {
    uint64_t guest = i * im.block_size;
    uint64_t len = std::min(im.block_size, im.virtual_size - guest);
    uint64_t host = BlockHost(i);
    Extent e{guest, len, qcow2::kZero, 0, 0};
    if (im.fixed) {
      e = Extent{guest, len, qcow2::kData, host, len};
    } else if (host != 0 && im.compressed) {
      uint64_t avail = im.file_size == kUnknownSize ? 2 * im.block_size : im.file_size - host;
      e = Extent{guest, len, qcow2::kMarkerGrain, host, std::min(2 * im.block_size, avail)};
    } else if (host != 0) {
      e = Extent{guest, len, qcow2::kData, host, len};
    }
    if (!out.empty()) {
      Extent& last = out.back();
      if (last.guest + last.length == e.guest && last.kind == e.kind &&
          e.kind != qcow2::kMarkerGrain &&
          (e.kind == qcow2::kZero || last.host + last.length == e.host)) {
        last.length += e.length;
        if (e.kind == qcow2::kData)
          last.host_len += e.host_len;
        continue;
      }
    }
    out.push_back(e);
  }
}

}  // namespace imgfmt
