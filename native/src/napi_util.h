// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the Node-API layer: turning core errors into JS errors with a `code`.
#ifndef CDI_NATIVE_NAPI_UTIL_H_
#define CDI_NATIVE_NAPI_UTIL_H_

#include <napi.h>

#include <string>

#include "qcow2.h"

namespace cdi {

// A JS Error with `code` set (matched by native/index.ts, never by message).
inline Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Reads a non-negative integer property that must be exact in a double.
inline uint64_t GetU64(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(obj.Env(), std::string("expected a number for ") + key);
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740992.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(obj.Env(), std::string("invalid value for ") + key);
  }
  return static_cast<uint64_t>(d);
}

inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("expected a number for ") + what);
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740992.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string("invalid value for ") + what);
  }
  return static_cast<uint64_t>(d);
}

inline Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string("expected a Buffer for ") + what);
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// Runs a core call, turning qcow2::Error into a JS error with a code.
template <typename F>
auto Guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const qcow2::Error& e) {
    throw CodedError(env, e.code(), e.what());
  }
}

}  // namespace cdi

#endif  // CDI_NATIVE_NAPI_UTIL_H_
