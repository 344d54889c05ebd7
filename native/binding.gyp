{
  "targets": [
    {
      "target_name": "nomyo_native",
      "sources": ["src/binding.cc", "src/platform.cc"],
      # The exception mode comes from node-addon-api's target (C++ exceptions on),
      # not from our own NAPI_CPP_EXCEPTIONS / NAPI_DISABLE_CPP_EXCEPTIONS defines.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      # Node-API 8: napi_detach_arraybuffer (7) is needed; Node >= 12.22.
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='win'", {
          "cflags_cc": ["-fvisibility=hidden", "-Wall", "-Wextra"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
            "MACOSX_DEPLOYMENT_TARGET": "10.15"
          }
        }]
      ]
    }
  ]
}
