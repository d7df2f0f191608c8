// SPDX-License-Identifier: Apache-2.0
// Plain C++ qcow2 core: header parser, L1/L2 mapping and the chunk copier. No Node-API here, so
// the fuzz target links it without node.
#ifndef CDI_NATIVE_QCOW2_H_
#define CDI_NATIVE_QCOW2_H_

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "host_claims.h"

namespace qcow2 {

// Error codes shared with common/errors.ts (ErrorCodes values).
constexpr const char* kImageInvalid = "CDI_IMAGE_INVALID";
constexpr const char* kImageBackingFile = "CDI_IMAGE_BACKING_FILE";
constexpr const char* kImageExternalData = "CDI_IMAGE_EXTERNAL_DATA";
constexpr const char* kImageEncrypted = "CDI_IMAGE_ENCRYPTED";
constexpr const char* kImageUnsupportedFeature = "CDI_IMAGE_UNSUPPORTED_FEATURE";
constexpr const char* kConvertFailed = "CDI_CONVERT_FAILED";
constexpr const char* kWriteFailed = "CDI_WRITE_FAILED";
constexpr const char* kNoSpace = "CDI_NO_SPACE";

// An error with a stable code; what() is a lower-case message with context.
class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

// qemu's limits (block/qcow2.h, qemu 7.2).
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
constexpr uint64_t kMaxL1Entries = (32ull << 20) / 8;  // QCOW_MAX_L1_SIZE / L1E_SIZE
constexpr uint64_t kMaxRefTableBytes = 8ull << 20;     // QCOW_MAX_REFTABLE_SIZE
constexpr uint32_t kMaxSnapshots = 65536;
constexpr uint32_t kMaxBackingNameLength = 1023;
// Virtual sizes must stay exact in a JavaScript number.
constexpr uint64_t kMaxVirtualSize = 1ull << 53;

// Everything the header and its extensions say, validated.
struct Header {
  uint32_t version = 0;
  uint32_t cluster_bits = 0;
  uint64_t cluster_size = 0;
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;     // entries in the header
  uint64_t l1_entries = 0;  // entries needed to cover the virtual size
  uint64_t l1_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
  uint32_t compression_type = 0;  // 0 zlib, 1 zstd
  bool extended_l2 = false;
  bool dirty = false;
  bool corrupt = false;
  uint64_t l2_entries = 0;       // entries per L2 table
  uint32_t l2_entry_size = 8;    // 8, or 16 with extended L2
  uint64_t subcluster_size = 0;  // cluster_size / 32 with extended L2
  std::string backing_file;
  bool has_backing_file = false;
  std::string external_data_file;
  bool has_external_data = false;
  // A reason conversion is refused (backing file, external data, encryption); empty if none.
  const char* refusal_code = nullptr;
  std::string refusal_message;
};

// Parses and validates the header from the image's first bytes. Throws Error on structurally
// invalid images; refusals (backing file, ...) are reported in Header::refusal_code.
Header ParseHeader(const uint8_t* data, size_t len, uint64_t file_size);

// Validates the L1 table (l1_entries * 8 bytes) and returns the L2 table offset of each entry
// (0: unallocated).
std::vector<uint64_t> ParseL1(const Header& h, const uint8_t* data, size_t len);

// Claims the structures the header locates (header cluster, L1 table, refcount table, the fixed
// part of the snapshot table) and the L2 tables the L1 names (`l2`, from ParseL1). An L2 table
// named by two L1 entries, or overlapping any of them, throws Error(kImageOverlap).
void ClaimTables(const Header& h, const std::vector<uint64_t>& l2, HostClaims& claims);

// Claims the refcount blocks the refcount table (`len` bytes at its offset) names.
void ClaimRefcountBlocks(const Header& h, const uint8_t* table, size_t len, HostClaims& claims);

// kMarkerGrain: a VMDK streamOptimized grain, host bytes = 12-byte marker (lba, size) + zlib
// stream (RFC 1950) of at most one grain (`Header::cluster_size`); host_len bounds the read.
enum ExtentKind : uint32_t { kZero = 0, kData = 1, kCompressed = 2, kMarkerGrain = 3 };

// A guest range and where its bytes come from.
struct Extent {
  uint64_t guest;
  uint64_t length;
  uint32_t kind;
  uint64_t host;      // data: offset of guest byte `guest`; compressed: start of the stream
  uint64_t host_len;  // data: == length (may pass EOF: read as zeros); compressed: bytes to read
};

// Maps one L2 table (cluster_size bytes) of L1 entry `l1_index` to extents in guest order,
// merging neighbours (zero runs; data contiguous in guest and host). Appends to `out`. With
// `claims`, every allocated cluster (data, zero-allocated, compressed bytes) is claimed.
void MapL2(const Header& h,
           uint64_t l1_index,
           const uint8_t* data,
           size_t len,
           std::vector<Extent>& out,
           HostClaims* claims = nullptr);

// Where a chunk's host bytes come from.
class HostReader {
 public:
  virtual ~HostReader() = default;
  // Fills dst with host bytes [offset, offset+len); bytes past the image end read as zeros.
  virtual void Read(uint64_t offset, size_t len, uint8_t* dst) = 0;
};

// Where a chunk's guest bytes go.
class TargetWriter {
 public:
  virtual ~TargetWriter() = default;
  virtual void Write(const uint8_t* data, size_t len, uint64_t offset) = 0;
};

struct ChunkStats {
  uint64_t data_bytes_written = 0;
  uint64_t zero_bytes = 0;  // guest bytes of the chunk not written (sparse)
  uint64_t bytes_read = 0;
};

// Produces guest bytes [guest_offset, guest_offset+guest_length) from the extents (all inside
// that range, in guest order; gaps read as zero) and writes them. With `sparse`, all-zero blocks
// are skipped (the target already reads as zeros); otherwise everything is written.
ChunkStats ProcessChunk(const Header& h,
                        uint64_t guest_offset,
                        uint64_t guest_length,
                        const Extent* extents,
                        size_t count,
                        HostReader& reader,
                        TargetWriter& writer,
                        bool sparse);

// Decompresses one compressed cluster into `out` (out_len must be at least cluster_size).
// Throws Error.
void DecompressCluster(const Header& h,
                       const uint8_t* in,
                       size_t in_len,
                       uint8_t* out,
                       size_t out_len,
                       uint64_t guest_offset);

// Decodes one VMDK marker grain (`in` holds the marker and its zlib stream) into `out`, which
// receives at least `need` bytes (a final partial grain may inflate to less than a grain).
void DecodeMarkerGrain(const uint8_t* in,
                       size_t in_len,
                       uint8_t* out,
                       size_t out_len,
                       size_t need,
                       uint64_t guest_offset);

// True if the buffer is all zero bytes.
bool IsZero(const uint8_t* data, size_t len);

}  // namespace qcow2

#endif  // CDI_NATIVE_QCOW2_H_
