// SPDX-License-Identifier: Apache-2.0
#include "host_claims.h"

#include <algorithm>
#include <cinttypes>

#include "parse_util.h"
#include "qcow2.h"

namespace qcow2 {
namespace {

constexpr uint64_t kSectorSlack = 511;

[[noreturn]] void Overlap(uint64_t offset, const Owner& a, bool a_merged, const Owner& b) {
  throw Error(kImageOverlap,
              parse::Fmt("host bytes at offset %" PRIu64 " are used twice, by %s and by %s "
                         "(shared or overlapping image metadata is refused)",
                         offset, Describe(a, !a_merged).c_str(), Describe(b).c_str()));
}

}  // namespace

std::string Describe(const Owner& o, bool one) {
  using parse::Fmt;
  if (!one) {
    switch (o.use) {
      case Use::kRefcountBlock:
        return "a refcount block";
      case Use::kL2Table:
        return "an l2 table";
      case Use::kDataCluster:
        return "a data cluster";
      case Use::kCompressedCluster:
        return "a compressed cluster";
      case Use::kGrainTable:
        return "a grain table";
      case Use::kBlock:
        return "a block";
      default:
        break;
    }
  }
  switch (o.use) {
    case Use::kHeader:
      return "the header";
    case Use::kL1Table:
      return "the l1 table";
    case Use::kRefcountTable:
      return "the refcount table";
    case Use::kRefcountBlock:
      return Fmt("refcount block %" PRIu64, o.key);
    case Use::kSnapshotTable:
      return "the snapshot table";
    case Use::kL2Table:
      return Fmt("the l2 table of l1 entry %" PRIu64, o.key);
    case Use::kDataCluster:
      return Fmt("the data cluster at guest offset %" PRIu64, o.key);
    case Use::kCompressedCluster:
      return Fmt("the compressed cluster at guest offset %" PRIu64, o.key);
    case Use::kBlockTable:
      return "the block table";
    case Use::kGrainDirectory:
      return "the grain directory";
    case Use::kGrainTable:
      return Fmt("grain table %" PRIu64, o.key);
    case Use::kBlock:
      return Fmt("block %" PRIu64, o.key);
    case Use::kRegion:
      return Fmt("the region at offset %" PRIu64, o.key);
  }
  return "an image structure";
}

void HostClaims::Claim(uint64_t offset, uint64_t length, Owner owner) {
  if (length == 0)
    return;
  const uint64_t end = offset + std::min(length, ~uint64_t(0) - offset);
  // The first span that could overlap: the last one starting before `end`.
  auto it = spans_.lower_bound(end);
  if (it != spans_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > offset)
      Overlap(std::max(offset, prev->first), prev->second.owner, prev->second.merged, owner);
  }
  Insert(offset, end, owner);
}

void HostClaims::ClaimPacked(uint64_t offset, uint64_t length, Owner owner) {
  if (length == 0)
    return;
  const uint64_t end = offset + std::min(length, ~uint64_t(0) - offset);
  // Every span overlapping [offset, end) must be packed and touch only a shared end sector.
  auto it = spans_.upper_bound(offset);
  if (it != spans_.begin())
    --it;
  for (; it != spans_.end() && it->first < end; ++it) {
    const uint64_t s = it->first;
    const uint64_t e = it->second.end;
    if (e <= offset)
      continue;
    const bool packed = it->second.owner.use == Use::kCompressedCluster;
    const bool after = s < offset && e - offset <= kSectorSlack && end >= e;
    const bool before = offset < s && end - s <= kSectorSlack && e >= end;
    if (!packed || !(after || before))
      Overlap(std::max(offset, s), it->second.owner, it->second.merged, owner);
  }
  Insert(offset, end, owner);
}

void HostClaims::Insert(uint64_t offset, uint64_t end, Owner owner) {
  // Merge with neighbours of the same use that touch or (packed) share a sector.
  bool merged = false;
  auto next = spans_.lower_bound(offset);
  if (next != spans_.begin()) {
    auto prev = std::prev(next);
    if (prev->second.owner.use == owner.use && prev->second.end >= offset) {
      offset = prev->first;
      end = std::max(end, prev->second.end);
      owner = prev->second.owner;
      merged = true;
      spans_.erase(prev);
    }
  }
  next = spans_.lower_bound(offset);
  while (next != spans_.end() && next->first <= end && next->second.owner.use == owner.use) {
    end = std::max(end, next->second.end);
    merged = true;
    next = spans_.erase(next);
  }
  spans_[offset] = Span{end, owner, merged};
}

}  // namespace qcow2
