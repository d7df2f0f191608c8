// SPDX-License-Identifier: Apache-2.0
// Registers the exports only; see binding.d.ts for the surface.
#include <napi.h>

#include "chunk_worker.h"
#include "decoder_wrap.h"
#include "extents.h"
#include "image_map.h"
#include "qcow2_map.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Qcow2Map", cdi::Qcow2Map::Init(env));
  exports.Set("ImageMap", cdi::ImageMap::Init(env));
  exports.Set("StreamDecoder", cdi::DecoderWrap::Init(env));
  exports.Set("zeroRange", Napi::Function::New<cdi::ZeroRangeAsync>(env, "zeroRange"));
  exports.Set("writeAt", Napi::Function::New<cdi::WriteAtAsync>(env, "writeAt"));
  exports.Set("dataExtents", Napi::Function::New<cdi::DataExtentsAsync>(env, "dataExtents"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cdi_native, Init)
