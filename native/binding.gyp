{
  "targets": [
    {
      "target_name": "cdi_native",
      "sources": [
        "src/addon.cc",
        "src/chunk_worker.cc",
        "src/decoder_wrap.cc",
        "src/extents.cc",
        "src/fd_io.cc",
        "src/host_claims.cc",
        "src/image_format.cc",
        "src/image_map.cc",
        "src/qcow2.cc",
        "src/qcow2_map.cc",
        "src/stream_decoder.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,relro,-z,now"],
      "libraries": ["-lz", "-lzstd", "-llzma", "-lisal"]
    }
  ]
}
