// Embeds the CLIP vocabulary files with the assembler's .incbin, so the data needs no generated
// source and no copy at start-up. SDC_CLIP_ASSETS_DIR (the absolute path of assets/clip) comes
// from the root CMakeLists.txt, which also makes this object depend on the two files.
#include "text/builtin_vocab.h"

#ifndef SDC_CLIP_ASSETS_DIR
#error "SDC_CLIP_ASSETS_DIR must name the folder holding vocab.json and merges.txt"
#endif

// Each blob gets a begin and an end label; the data lives in read-only memory.
#define SDC_INCBIN(sym, file)                       \
  ".pushsection .rodata.sdc_clip,\"a\",@progbits\n" \
  ".balign 16\n"                                    \
  ".globl " #sym                                    \
  "_begin\n"                                        \
  ".hidden " #sym "_begin\n" #sym                   \
  "_begin:\n"                                       \
  ".incbin \"" SDC_CLIP_ASSETS_DIR "/" file         \
  "\"\n"                                            \
  ".globl " #sym                                    \
  "_end\n"                                          \
  ".hidden " #sym "_end\n" #sym                     \
  "_end:\n"                                         \
  ".byte 0\n"                                       \
  ".popsection\n"

__asm__(SDC_INCBIN(sdc_clip_vocab_json, "vocab.json")
            SDC_INCBIN(sdc_clip_merges_txt, "merges.txt"));

extern "C" {
__attribute__((visibility("hidden"))) extern const char sdc_clip_vocab_json_begin[];
__attribute__((visibility("hidden"))) extern const char sdc_clip_vocab_json_end[];
__attribute__((visibility("hidden"))) extern const char sdc_clip_merges_txt_begin[];
__attribute__((visibility("hidden"))) extern const char sdc_clip_merges_txt_end[];
}

namespace sdc::text {

std::string_view builtin_clip_vocab_json() {
  return {sdc_clip_vocab_json_begin,
          static_cast<size_t>(sdc_clip_vocab_json_end - sdc_clip_vocab_json_begin)};
}

std::string_view builtin_clip_merges_txt() {
  return {sdc_clip_merges_txt_begin,
          static_cast<size_t>(sdc_clip_merges_txt_end - sdc_clip_merges_txt_begin)};
}

}  // namespace sdc::text
