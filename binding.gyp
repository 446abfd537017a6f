{
  "targets": [
    {
      "target_name": "eet",
      "sources": [
        "<!@(node scripts/sources.js host)",
        "<!@(node scripts/sources.js emu)"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "."],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=c++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-parameter",
                    "-fstack-clash-protection", "-fno-strict-aliasing"],
      "libraries": ["-lpthread", "-ldl"]
    }
  ]
}
