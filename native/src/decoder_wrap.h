// SPDX-License-Identifier: Apache-2.0
// StreamDecoder wrapped for JavaScript: each decode() runs on the libuv pool (never on the event
// loop) and settles a promise; importer/decompress/native-decoder.ts drives it.
#ifndef CDI_NATIVE_DECODER_WRAP_H_
#define CDI_NATIVE_DECODER_WRAP_H_

#include <napi.h>

#include <memory>

#include "stream_decoder.h"

namespace cdi {

class DecoderWrap : public Napi::ObjectWrap<DecoderWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit DecoderWrap(const Napi::CallbackInfo& info);

  void Settled() { busy_ = false; }

 private:
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // Shared with the worker in flight, so close() while it runs frees the decoder after it.
  std::shared_ptr<decode::StreamDecoder> decoder_;
  bool busy_ = false;
};

}  // namespace cdi

#endif  // CDI_NATIVE_DECODER_WRAP_H_
