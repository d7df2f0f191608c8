// SPDX-License-Identifier: Apache-2.0
// Which structure of an image owns each host byte. Every converter (random access, streaming,
// fuzz target) claims the same structures, in whatever order it meets them, and the first
// overlap is refused with CDI_IMAGE_OVERLAP: a byte used twice (an L2 table named by two L1
// entries, a data cluster inside a refcount block, two blocks sharing bytes, ...) would make a
// streaming reader, which sees each byte once, disagree with qemu-img. Plain C++ (fuzzed).
#ifndef CDI_NATIVE_HOST_CLAIMS_H_
#define CDI_NATIVE_HOST_CLAIMS_H_

#include <cstdint>
#include <map>
#include <string>

namespace qcow2 {

constexpr const char* kImageOverlap = "CDI_IMAGE_OVERLAP";

// The structures an image is made of (qcow2 first, then the block-map formats).
enum class Use : uint8_t {
  kHeader,
  kL1Table,
  kRefcountTable,
  kRefcountBlock,
  kSnapshotTable,
  kL2Table,
  kDataCluster,
  kCompressedCluster,
  kBlockTable,
  kGrainDirectory,
  kGrainTable,
  kBlock,
  kRegion,
};

// A claim: what owns the bytes and which one (an L1 index, a guest offset, a block number).
struct Owner {
  Use use;
  uint64_t key;
};

// Words for a message: "the l2 table of l1 entry 1", "the data cluster at guest offset 0", ...;
// for a run of merged claims, which one is no longer known: "an l2 table", "a data cluster".
std::string Describe(const Owner& o, bool one = true);

class HostClaims {
 public:
  // Claims [offset, offset+length) for `owner`; throws Error(kImageOverlap) when any byte is
  // already claimed. Adjacent claims of the same use merge, so memory follows the number of
  // separate runs, not of clusters.
  void Claim(uint64_t offset, uint64_t length, Owner owner);
  // A qcow2 compressed cluster: its descriptor's range ends at a 512-byte sector boundary, and
  // the next compressed cluster may start in that last sector (qemu packs them), so packed
  // ranges may share up to 511 bytes at their ends, never more, and nothing else.
  void ClaimPacked(uint64_t offset, uint64_t length, Owner owner);
  size_t spans() const { return spans_.size(); }

 private:
  struct Span {
    uint64_t end;
    Owner owner;
    bool merged;  // more than one claim: `owner` names the first only
  };
  void Insert(uint64_t offset, uint64_t end, Owner owner);
  std::map<uint64_t, Span> spans_;  // by start; disjoint except packed neighbours
};

}  // namespace qcow2

#endif  // CDI_NATIVE_HOST_CLAIMS_H_
