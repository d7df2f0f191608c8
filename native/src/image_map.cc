// SPDX-License-Identifier: Apache-2.0
#include "image_map.h"

#include <string>
#include <vector>

#include "chunk_worker.h"
#include "napi_util.h"

namespace cdi {
namespace {

imgfmt::Format ArgFormat(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "expected a format name");
  std::string f = info[0].As<Napi::String>().Utf8Value();
  if (f == "vdi")
    return imgfmt::Format::kVdi;
  if (f == "vhd")
    return imgfmt::Format::kVhd;
  if (f == "vmdk")
    return imgfmt::Format::kVmdk;
  if (f == "vhdx")
    return imgfmt::Format::kVhdx;
  throw Napi::TypeError::New(info.Env(), "unknown format " + f);
}

}  // namespace

Napi::Function ImageMap::Init(Napi::Env env) {
  return DefineClass(env, "ImageMap",
                     {
                         InstanceMethod<&ImageMap::Info>("info"),
                         InstanceMethod<&ImageMap::Needs>("needs"),
                         InstanceMethod<&ImageMap::Feed>("feed"),
                         InstanceMethod<&ImageMap::MapBlocks>("mapBlocks"),
                         InstanceMethod<&ImageMap::ProcessChunk>("processChunk"),
                     });
}

// new ImageMap(format, head, tail, fileSize); fileSize -1 when unknown (streaming).
ImageMap::ImageMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ImageMap>(info) {
  imgfmt::Format format = ArgFormat(info);
  Napi::Buffer<uint8_t> head = ArgBuffer(info, 1, "head");
  Napi::Buffer<uint8_t> tail = ArgBuffer(info, 2, "tail");
  uint64_t file_size = imgfmt::kUnknownSize;
  if (info.Length() > 3 && info[3].IsNumber() && info[3].As<Napi::Number>().DoubleValue() >= 0)
    file_size = ArgU64(info, 3, "fileSize");
  imgfmt::Image image = Guard(info.Env(), [&] {
    return imgfmt::ParseImage(format, head.Data(), head.Length(), tail.Data(), tail.Length(),
                              file_size);
  });
  // The block map claims the header and tables at once and may refuse the image (overlaps).
  map_ = Guard(info.Env(), [&] { return std::make_unique<imgfmt::BlockMap>(image); });
  chunk_header_.file_size = file_size == imgfmt::kUnknownSize ? (1ull << 53) : file_size;
  chunk_header_.cluster_size = image.block_size;
}

Napi::Value ImageMap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const imgfmt::Image& im = map_->image();
  Napi::Object o = Napi::Object::New(env);
  const char* names[] = {"", "vdi", "vhd", "vmdk", "vhdx"};
  o.Set("format", names[uint32_t(im.format)]);
  o.Set("subformat", im.subformat);
  o.Set("virtualSize", double(im.virtual_size));
  o.Set("blockSize", double(im.block_size));
  o.Set("blockCount", double(im.block_count));
  o.Set("compressed", im.compressed);
  o.Set("fixed", im.fixed);
  o.Set("footerAtEnd", im.footer_at_end);
  o.Set("grainOffset", double(im.grain_offset));
  if (!im.creator.empty())
    o.Set("creator", im.creator);
  if (im.refusal_code != nullptr) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("code", im.refusal_code);
    r.Set("message", im.refusal_message);
    o.Set("refusal", r);
  }
  return o;
}

Napi::Value ImageMap::Needs(const Napi::CallbackInfo& info) {
  const std::vector<imgfmt::Range>& needs = map_->Needs();
  Napi::Float64Array arr = Napi::Float64Array::New(info.Env(), needs.size() * 2);
  for (size_t i = 0; i < needs.size(); i++) {
    arr[i * 2] = double(needs[i].offset);
    arr[i * 2 + 1] = double(needs[i].length);
  }
  return arr;
}

Napi::Value ImageMap::Feed(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgU64(info, 0, "offset");
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, "table");
  Guard(info.Env(), [&] {
    map_->Feed(offset, buf.Data(), buf.Length());
    return 0;
  });
  return Napi::Boolean::New(info.Env(), map_->Complete());
}

Napi::Value ImageMap::MapBlocks(const Napi::CallbackInfo& info) {
  uint64_t first = ArgU64(info, 0, "first");
  uint64_t count = ArgU64(info, 1, "count");
  std::vector<qcow2::Extent> ex;
  Guard(info.Env(), [&] {
    map_->Map(first, count, ex);
    return 0;
  });
  return ExtentsToArray(info.Env(), ex);
}

Napi::Value ImageMap::ProcessChunk(const Napi::CallbackInfo& info) {
  return QueueChunk(info, chunk_header_);
}

}  // namespace cdi
