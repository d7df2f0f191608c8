// SPDX-License-Identifier: Apache-2.0
// ImageMap: a validated VDI/VHD/VMDK header and its block map wrapped for JavaScript; the caller
// (native/block-map.ts) reads the tables it asks for and schedules the chunk workers.
#ifndef CDI_NATIVE_IMAGE_MAP_H_
#define CDI_NATIVE_IMAGE_MAP_H_

#include <napi.h>

#include <memory>

#include "image_format.h"

namespace cdi {

class ImageMap : public Napi::ObjectWrap<ImageMap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ImageMap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Needs(const Napi::CallbackInfo& info);
  Napi::Value Feed(const Napi::CallbackInfo& info);
  Napi::Value MapBlocks(const Napi::CallbackInfo& info);
  Napi::Value ProcessChunk(const Napi::CallbackInfo& info);

  std::unique_ptr<imgfmt::BlockMap> map_;
  qcow2::Header chunk_header_;  // what the chunk copier needs: file size, grain size
};

}  // namespace cdi

#endif  // CDI_NATIVE_IMAGE_MAP_H_
