{
  "targets": [
    {
      "target_name": "metallb_native",
      "sources": ["metallb_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["metallb_native.c"] }]
      ]
    }
  ]
}
