// SPDX-License-Identifier: Apache-2.0
// Small helpers the image parsers share: byte-order reads, printf-style messages, bounds checks
// that cannot overflow, and the "invalid image" error. Header-only; plain C++ (fuzzed with the
// parsers).
#ifndef CDI_NATIVE_PARSE_UTIL_H_
#define CDI_NATIVE_PARSE_UTIL_H_

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>

#include "qcow2.h"

namespace parse {

inline uint16_t Le16(const uint8_t* p) {
  return uint16_t(p[0] | (p[1] << 8));
}
inline uint32_t Le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t Le64(const uint8_t* p) {
  return uint64_t(Le32(p)) | (uint64_t(Le32(p + 4)) << 32);
}
inline uint16_t Be16(const uint8_t* p) {
  return uint16_t((p[0] << 8) | p[1]);
}
inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline uint64_t Be64(const uint8_t* p) {
  return (uint64_t(Be32(p)) << 32) | Be32(p + 4);
}

inline std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string Fmt(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

[[noreturn]] inline void Invalid(const std::string& message) {
  throw qcow2::Error(qcow2::kImageInvalid, message);
}

// An image-provided string made safe for a message: control bytes, DEL and backslash become
// \xNN, so a name cannot forge lines or terminal escapes. Other bytes (UTF-8) are kept.
inline std::string Printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[5];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

// [offset, offset+len) inside a file of file_size bytes, without overflow.
inline bool InFile(uint64_t offset, uint64_t len, uint64_t file_size) {
  return offset <= file_size && len <= file_size - offset;
}

}  // namespace parse

#endif  // CDI_NATIVE_PARSE_UTIL_H_
