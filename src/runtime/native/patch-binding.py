"""Two small changes to tfjs-node's C++ binding before setup.sh compiles it.

1. TensorFlow's absl log lines (the 'WARNING: All log messages before absl::InitializeLog()'
   and 'I0000 ... mlir_graph_optimization_pass.cc' lines) obey TF_CPP_MIN_LOG_LEVEL as
   TensorFlow's own log lines do: absl's minimum level is set from it when the binding loads
   (elbo sets it to 2 unless ELBO_TF_LOG=1 or --verbose asks for the logs). There are two
   copies of absl: libtensorflow_framework's exports SetMinLogLevel; libtensorflow_cc's
   (which writes those two lines) is internal, so its level variable is written at the
   offset setup.sh reads from the library's symbol table (MIN_LOG_LEVEL_OFFSET, the second
   argument; without it those lines stay). The wheel is pinned by hash, so the offset is
   that of the one library it can be.
2. ELBO_TF_CONFIG, when set, is a serialized tensorflow.ConfigProto in hex: the eager
   context and every session the binding loads (the compiled step and evaluations) get it.
   elbo writes it (src/runtime/graph/session-config.ts): threads, Grappler, XLA.

Usage: python3 patch-binding.py BINDING_DIR [MIN_LOG_LEVEL_OFFSET]. Fails loudly when the source is not the
expected one (a new tfjs-node version), rather than compiling something else.
"""
import sys
from pathlib import Path

MARK = '// elbo: '
HELPERS = r'''
#include <cstdlib>
#include <dlfcn.h>
#include "absl/base/log_severity.h"
#include "absl/log/globals.h"

// elbo: ELBO_TF_CONFIG (a tensorflow.ConfigProto, serialized, in hex), or "" when unset
static std::string ElboConfigFromEnv() {
  const char *hex = std::getenv("ELBO_TF_CONFIG");
  std::string out;
  if (hex == nullptr) return out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; };
  for (size_t i = 0; hex[i] != 0 && hex[i + 1] != 0; i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

// elbo: absl's log level from TF_CPP_MIN_LOG_LEVEL (0 info, 1 warning, 2 error, 3 fatal)
static void ElboLogLevelFromEnv() {
  const char *level = std::getenv("TF_CPP_MIN_LOG_LEVEL");
  int l = level == nullptr ? 0 : std::atoi(level);
  if (l <= 0) return;
  if (l > 3) l = 3;
  absl::SetMinLogLevel(static_cast<absl::LogSeverityAtLeast>(l));
#ifdef ELBO_CC_MIN_LOG_LEVEL_OFFSET
  // libtensorflow_cc's own absl: its min_log_level, found from where TF_Version was loaded
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&TF_Version), &info) != 0 && info.dli_fbase != nullptr) {
    int *level = reinterpret_cast<int *>(static_cast<char *>(info.dli_fbase) + ELBO_CC_MIN_LOG_LEVEL_OFFSET);
    if (*level == 0) *level = l;  // absl's default (info): anything else is not that variable
  }
#endif
}
'''

CONTEXT = '''  TFE_ContextOptions *tfe_options = TFE_NewContextOptions();
'''
CONTEXT_NEW = CONTEXT + '''  // elbo: log level and session configuration
  ElboLogLevelFromEnv();
  const std::string elbo_config = ElboConfigFromEnv();
  if (!elbo_config.empty()) {
    TFE_ContextOptionsSetConfig(tfe_options, elbo_config.data(), elbo_config.size(), tf_status.status);
    if (TF_GetCode(tf_status.status) != TF_OK) {
      NAPI_THROW_ERROR(env, "ELBO_TF_CONFIG: %s", TF_Message(tf_status.status));
    }
  }
'''

SESSION = '''  TF_SessionOptions *session_options = TF_NewSessionOptions();
'''
SESSION_NEW = SESSION + '''  // elbo: the session configuration
  const std::string elbo_config = ElboConfigFromEnv();
  if (!elbo_config.empty()) {
    TF_AutoStatus config_status;
    TF_SetConfig(session_options, elbo_config.data(), elbo_config.size(), config_status.status);
    if (TF_GetCode(config_status.status) != TF_OK) {
      TF_DeleteSessionOptions(session_options);
      NAPI_THROW_ERROR(env, "ELBO_TF_CONFIG: %s", TF_Message(config_status.status));
      return nullptr;
    }
  }
'''

INCLUDE = '#include "utils.h"\n'


def main(binding: Path, offset: str | None) -> None:
    src = binding / 'tfjs_backend.cc'
    text = src.read_text()
    if MARK in text:
        return
    for needle in (INCLUDE, CONTEXT, SESSION):
        if text.count(needle) != 1:
            sys.exit(f'patch-binding: {src} is not the expected tfjs-node source ({needle.strip()!r} found {text.count(needle)} times)')
    helpers = HELPERS
    if offset:
        helpers = f'\n#define ELBO_CC_MIN_LOG_LEVEL_OFFSET {int(offset, 16):#x}' + helpers
    text = text.replace(INCLUDE, INCLUDE + helpers).replace(CONTEXT, CONTEXT_NEW).replace(SESSION, SESSION_NEW)
    src.write_text(text)


if __name__ == '__main__':
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
