// SPDX-License-Identifier: Apache-2.0
#include "decoder_wrap.h"

#include <lzma.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "chunk_worker.h"
#include "napi_util.h"

namespace cdi {

namespace {

// Memory the xz decoder may use for decoding blocks in parallel: xz -T2's blocks (3 x the
// dictionary, 24 MiB at the default preset) fit many times; a stream with larger blocks is decoded
// on one thread instead, so the limit costs speed, never an import.
constexpr uint64_t kXzThreadingMemory = 256ull << 20;
constexpr uint32_t kMaxXzThreads = 16;
// Buffers per array argument of decode(): far more than the stream ever passes.
constexpr uint32_t kMaxBuffers = 4096;

// A range of a Buffer handed in from JavaScript.
struct Span {
  uint8_t* data;
  size_t length;
};

// Buffers of an array argument as spans, each kept alive by a reference until the call settles.
std::vector<Span> ArgSpans(const Napi::CallbackInfo& info,
                           size_t i,
                           const char* what,
                           std::vector<Napi::ObjectReference>& keep) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsArray())
    throw Napi::TypeError::New(env, std::string("expected an array of buffers for ") + what);
  Napi::Array array = info[i].As<Napi::Array>();
  if (array.Length() > kMaxBuffers)
    throw Napi::RangeError::New(env, std::string("too many buffers for ") + what);
  std::vector<Span> spans;
  for (uint32_t k = 0; k < array.Length(); k++) {
    Napi::Value v = array.Get(k);
    if (!v.IsBuffer())
      throw Napi::TypeError::New(env, std::string("expected an array of buffers for ") + what);
    Napi::Buffer<uint8_t> buf = v.As<Napi::Buffer<uint8_t>>();
    spans.push_back({buf.Data(), buf.Length()});
    keep.push_back(Napi::Persistent(buf.As<Napi::Object>()));
  }
  return spans;
}

class DecodeWorker : public PromiseWorker {
 public:
  DecodeWorker(Napi::Env env,
               DecoderWrap* wrap,
               std::shared_ptr<decode::StreamDecoder> decoder,
               Napi::Object self,
               std::vector<Span> inputs,
               std::vector<Span> outputs,
               std::vector<Napi::ObjectReference> keep,
               bool finish)
      : PromiseWorker(env),
        wrap_(wrap),
        decoder_(std::move(decoder)),
        self_(Napi::Persistent(self)),
        keep_(std::move(keep)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        finish_(finish) {
    code_ = decode::kDecompressFailed;
  }

 protected:
  // Fills the output blocks in turn from the input pieces in turn; stops when the decoder needs
  // more input than it was given or the stream ended. Only the last piece is passed with
  // `finish`.
  void Run() override {
    size_t piece = 0;
    size_t piece_pos = 0;
    for (const Span& out : outputs_) {
      size_t filled = 0;
      bool starved = false;
      while (filled < out.length && !ended_) {
        while (piece < inputs_.size() && piece_pos == inputs_[piece].length) {
          piece++;
          piece_pos = 0;
        }
        const bool last = piece + 1 >= inputs_.size();
        const uint8_t* in = piece < inputs_.size() ? inputs_[piece].data + piece_pos : nullptr;
        const size_t in_len = piece < inputs_.size() ? inputs_[piece].length - piece_pos : 0;
        const decode::Step step =
            decoder_->Decode(in, in_len, out.data + filled, out.length - filled, finish_ && last);
        piece_pos += step.consumed;
        consumed_ += step.consumed;
        filled += step.produced;
        ended_ = step.ended;
        const bool idle = step.consumed == 0 && step.produced == 0;
        if (!ended_ && filled < out.length && ((step.consumed == in_len && last) || idle)) {
          starved = true;
          break;
        }
      }
      produced_ += filled;
      zero_.push_back(decode::AllZero(out.data, filled));
      if (ended_ || starved)
        break;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("consumed", Napi::Number::New(env, double(consumed_)));
    out.Set("produced", Napi::Number::New(env, double(produced_)));
    out.Set("ended", Napi::Boolean::New(env, ended_));
    Napi::Array zero = Napi::Array::New(env, zero_.size());
    for (uint32_t i = 0; i < zero_.size(); i++)
      zero.Set(i, Napi::Boolean::New(env, zero_[i]));
    out.Set("zero", zero);
    Release();
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    Release();
    PromiseWorker::OnError(e);
  }

 private:
  void Release() {
    wrap_->Settled();
    decoder_.reset();
    keep_.clear();
    self_.Reset();
  }

  DecoderWrap* wrap_;  // kept alive by self_
  std::shared_ptr<decode::StreamDecoder> decoder_;
  Napi::ObjectReference self_;
  std::vector<Napi::ObjectReference> keep_;  // the input and output buffers
  std::vector<Span> inputs_;
  std::vector<Span> outputs_;
  bool finish_;
  size_t consumed_ = 0;
  size_t produced_ = 0;
  bool ended_ = false;
  std::vector<bool> zero_;
};

}  // namespace

Napi::Function DecoderWrap::Init(Napi::Env env) {
  return DefineClass(env, "StreamDecoder",
                     {
                         InstanceMethod<&DecoderWrap::Decode>("decode"),
                         InstanceMethod<&DecoderWrap::Close>("close"),
                     });
}

DecoderWrap::DecoderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DecoderWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "expected a format name");
  }
  const std::string format = info[0].As<Napi::String>().Utf8Value();
  Guard(env, [&] {
    if (format == "xz") {
      const uint64_t threads = std::min<uint64_t>(ArgU64(info, 1, "threads"), kMaxXzThreads);
      decoder_ =
          decode::NewXzDecoder(uint32_t(threads), std::min(kXzThreadingMemory, lzma_physmem() / 4));
    } else if (format == "gzip") {
      decoder_ = decode::NewGzipDecoder();
    } else {
      throw Napi::RangeError::New(env, "unknown stream format " + format);
    }
  });
}

Napi::Value DecoderWrap::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (decoder_ == nullptr)
    throw Napi::Error::New(env, "decoder is closed");
  if (busy_)
    throw Napi::Error::New(env, "decode() called while a call is in flight");
  std::vector<Napi::ObjectReference> keep;
  std::vector<Span> inputs = ArgSpans(info, 0, "input", keep);
  std::vector<Span> outputs = ArgSpans(info, 1, "outputs", keep);
  if (outputs.empty())
    throw Napi::RangeError::New(env, "expected at least one output buffer");
  const uint64_t offset = ArgU64(info, 2, "firstOffset");
  if (offset > outputs[0].length)
    throw Napi::RangeError::New(env, "firstOffset beyond the first output buffer");
  outputs[0].data += offset;
  outputs[0].length -= offset;
  const bool finish = info.Length() > 3 && info[3].ToBoolean();
  auto* worker = new DecodeWorker(env, this, decoder_, Value(), std::move(inputs),
                                  std::move(outputs), std::move(keep), finish);
  busy_ = true;
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value DecoderWrap::Close(const Napi::CallbackInfo& info) {
  decoder_.reset();
  return info.Env().Undefined();
}

}  // namespace cdi
