// SPDX-License-Identifier: Apache-2.0
// Plain C++ cores for VDI, VHD and VMDK: header parsing and validation, and the block map
// (guest block -> file offset or zero) both conversion paths share. No Node-API here, so the
// fuzz target links it without node. Reading follows qemu 7.2 (block/vdi.c, vpc.c, vmdk.c).
#ifndef CDI_NATIVE_IMAGE_FORMAT_H_
#define CDI_NATIVE_IMAGE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qcow2.h"

namespace imgfmt {

using qcow2::Error;
using qcow2::Extent;

enum class Format : uint32_t { kVdi = 1, kVhd = 2, kVmdk = 3, kVhdx = 4 };

// Virtual sizes above 64 TiB are refused (far beyond any real disk; keeps maps bounded).
constexpr uint64_t kMaxVirtualSize = 64ull << 40;
// Block map entries held in memory (4 bytes each): 256 MiB at most.
constexpr uint64_t kMaxMapEntries = 64ull << 20;
// Bytes of the image a caller hands over as `head` (VMDK: header plus embedded descriptor;
// VHDX: file identifier, both headers and both region tables).
constexpr size_t kHeadBytes = 64 * 1024;
constexpr size_t kVhdxHeadBytes = 320 * 1024;
// Bytes at the end of the image a caller hands over as `tail` (VHD footer, VMDK footer).
constexpr size_t kTailBytes = 1536;
// Sentinel for "file size unknown" (sequential input); EOF checks are then skipped.
constexpr uint64_t kUnknownSize = ~0ull;

// A byte range of the image.
struct Range {
  uint64_t offset;
  uint64_t length;
};

// Parsed and validated header facts.
struct Image {
  Format format = Format::kVdi;
  std::string subformat;  // vdi: dynamic|static; vhd: dynamic|fixed; vmdk: monolithicSparse|...
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  uint64_t block_size = 0;   // guest bytes per map entry (VDI block, VHD block, VMDK grain)
  uint64_t block_count = 0;  // map entries covering the virtual size
  // VDI: offset of block 0's data; VHD: bytes of the sector bitmap before each block.
  uint64_t data_offset = 0;
  bool compressed = false;  // VMDK streamOptimized: deflate grains behind markers
  bool fixed = false;       // VHD fixed: guest byte n is file byte n, no map
  bool footer_at_end = false;
  uint64_t grain_offset = 0;  // VMDK: first grain (stream start of the markers)
  uint64_t gt_entries = 0;    // VMDK: entries per grain table
  bool zero_grain = false;    // VMDK: GT entry 1 means a zeroed grain
  Range table{0, 0};         // first-level table (VDI bmap, VHD BAT, VMDK GD, VHDX metadata region)
  Range bat{0, 0};           // VHDX: the BAT region (its used length is known from the metadata)
  uint64_t chunk_ratio = 0;  // VHDX: payload blocks per sector-bitmap block
  std::string creator;       // VHD creator application
  const char* refusal_code = nullptr;
  std::string refusal_message;
};

// Parses the header. `head` is the image's first min(size, kHeadBytes) bytes; `tail` its last
// min(size, kTailBytes) bytes (may be empty when streaming; then file_size is kUnknownSize).
Image ParseImage(Format format,
                 const uint8_t* head,
                 size_t head_len,
                 const uint8_t* tail,
                 size_t tail_len,
                 uint64_t file_size);

// Block map built from the tables; feed the ranges `Needs()` lists until it is empty.
class BlockMap {
 public:
  explicit BlockMap(const Image& image);
  // Ranges still to be fed (VDI/VHD: the table; VMDK: the GD, then every allocated GT).
  const std::vector<Range>& Needs() const { return needs_; }
  // Feeds the bytes of one needed range (exact offset and at least its length).
  void Feed(uint64_t offset, const uint8_t* data, size_t len);
  bool Complete() const { return needs_.empty(); }
  // Extents (guest order, merged) of blocks [first, first+count). Needs Complete().
  void Map(uint64_t first, uint64_t count, std::vector<Extent>& out) const;
  const Image& image() const { return image_; }
  // Host offset of block i's bytes, or 0 when it reads as zero.
  uint64_t BlockHost(uint64_t i) const;

 private:
  void LoadEntries(const uint8_t* data, size_t len, uint64_t first, uint64_t count, bool be);
  void LoadGd(const uint8_t* data);
  void LoadVhdxMetadata(const uint8_t* data, size_t len);
  void LoadVhdxBat(const uint8_t* data);
  void Validate();
  void CheckBlock(uint64_t i);
  uint64_t GrainHost(uint64_t i) const;

  Image image_;
  std::vector<Range> needs_;
  std::vector<uint32_t> entries_;  // VDI/VHD: raw map entry per block
  // VMDK: per GD entry, 1 + the slot of its grain table in gt_data_ (0: no table); the loaded
  // tables, gt_entries each, so memory follows the tables the file really holds.
  std::vector<uint32_t> gd_slot_;
  std::vector<uint32_t> gt_data_;
  // VMDK: grain tables not fed yet, by offset: the GD indexes naming each.
  std::vector<std::pair<uint64_t, std::vector<uint64_t>>> gts_;
  bool gd_loaded_ = false;
  // Host bytes of the header, the tables and the blocks: shared or overlapping ones are refused
  // (CDI_IMAGE_OVERLAP), whatever order the converter feeds the tables in.
  qcow2::HostClaims claims_;
};

}  // namespace imgfmt

#endif  // CDI_NATIVE_IMAGE_FORMAT_H_
