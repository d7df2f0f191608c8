// SPDX-License-Identifier: Apache-2.0
// Qcow2Map: a validated qcow2 header wrapped for JavaScript; maps L1/L2 tables to extents and
// runs chunk workers. The caller (native/index.ts) does the I/O scheduling.
#ifndef CDI_NATIVE_QCOW2_MAP_H_
#define CDI_NATIVE_QCOW2_MAP_H_

#include <napi.h>

#include "qcow2.h"

namespace cdi {

class Qcow2Map : public Napi::ObjectWrap<Qcow2Map> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Qcow2Map(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ParseL1(const Napi::CallbackInfo& info);
  Napi::Value ClaimRefcountTable(const Napi::CallbackInfo& info);
  Napi::Value MapL2(const Napi::CallbackInfo& info);
  Napi::Value ProcessChunk(const Napi::CallbackInfo& info);

  qcow2::Header header_;
  // Host bytes claimed so far (tables, clusters); every converter claims the same structures.
  qcow2::HostClaims claims_;
};

}  // namespace cdi

#endif  // CDI_NATIVE_QCOW2_MAP_H_
