// SPDX-License-Identifier: Apache-2.0
// DataExtents: the data ranges of a file or device (SEEK_DATA/SEEK_HOLE) on the libuv pool.
#ifndef CDI_NATIVE_EXTENTS_H_
#define CDI_NATIVE_EXTENTS_H_

#include <napi.h>

namespace cdi {

// (fd, start, end, maxExtents) -> Promise<Float64Array> of offset, length pairs.
Napi::Value DataExtentsAsync(const Napi::CallbackInfo& info);

}  // namespace cdi

#endif  // CDI_NATIVE_EXTENTS_H_
