# node-gyp build of the same addon that CMakeLists.txt (cmake-js) builds: the source list
# comes from native/sources.cjs for both. CI builds this once to catch drift.
{
  "targets": [
    {
      "target_name": "swinq_avx2",
      "type": "static_library",
      "sources": ["<!@(node native/sources.cjs avx2)"],
      "include_dirs": ["native/include"],
      "cflags_cc": ["-std=c++17", "-O3", "-mavx2", "-mfma", "-mf16c", "-fPIC"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "swinq_avx512",
      "type": "static_library",
      "sources": ["<!@(node native/sources.cjs avx512)"],
      "include_dirs": ["native/include"],
      "cflags_cc": ["-std=c++17", "-O3", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-fPIC"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "swinq",
      "dependencies": ["swinq_avx2", "swinq_avx512"],
      "sources": ["<!@(node native/sources.cjs core)", "<!@(node native/sources.cjs binding)"],
      "include_dirs": ["native/include", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
