/* presets.h — random-weight LLaVA models with real shapes (make-model, tests, benches).
 *
 * Contract: a preset names the shapes of a CLIP vision tower + MLP projector (mmproj)
 * and a LLaMA language model. preset_write_lm / preset_write_mmproj write GGUF files
 * in llama.cpp's LLaVA layout (see shared docs gguf-llava.md):
 *   - mmproj as tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py writes it for
 *     LLaVA-1.5: the tower's last block is dropped (block_count = layers - 1, the
 *     feature layer -2), no post_ln, fc1 stored as "ffn_down" and fc2 as "ffn_up" (the
 *     legacy swapped names; readers decide by shape), patch embedding always F16, 2-D
 *     ".weight" tensors in the mmproj type, everything else F32.
 *   - LM as convert_hf_to_gguf.py writes a LlamaForCausalLM: q/k rows permuted into
 *     GGUF's RoPE convention (rotary pairs adjacent), norms F32, 2-D weights in the
 *     requested type (or a fallback when ne[0] is not a multiple of its block size),
 *     separate output.weight, a SentencePiece-style vocabulary: <unk>, <s>, </s>, the
 *     256 byte pieces <0x00>..<0xFF>, then unique synthetic pieces, so any text
 *     tokenizes.
 * Weights are deterministic in the seed, one random stream per (tensor, row) so the
 * values do not depend on chunking: an approximately normal N(0, 1) (Irwin-Hall sum of
 * four uniforms, bounded by +-3.46) times 0.02; RMSNorm/LayerNorm weights 1, LayerNorm
 * biases 0, linear biases 0.02-scaled random. Tensors are streamed: memory stays at a
 * few MiB whatever the model size. */
#ifndef LLAVA_MECH_PRESETS_H
#define LLAVA_MECH_PRESETS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "threads.h"

typedef struct {
    const char *name;
    const char *summary;
    /* vision tower (CLIP ViT) */
    int image_size, patch_size;
    int v_width, v_blocks; /* v_blocks: blocks stored (the original tower has one more) */
    int v_heads, v_ffn, v_proj_dim;
    bool use_gelu;         /* false: quick_gelu, CLIP's activation */
    float v_eps;
    /* language model (LLaMA) */
    int ctx, n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    float rms_eps, rope_base;
} preset_t;

/* NULL when unknown. preset_at(i) enumerates (NULL past the end). */
const preset_t *preset_find(const char *name);
const preset_t *preset_at(int i);

typedef struct {
    int lm_type;     /* qtype of the LM's 2-D weights: F32, F16, Q8_0, Q4_0, Q4_K */
    int mmproj_type; /* F16 or F32 */
    uint64_t seed;
    gguf_progress_fn progress; /* optional, bytes of tensor data written */
    void *progress_user;
} preset_opts;

/* The type a 2-D weight with rows of ne0 elements gets when `type` is requested:
 * `type` itself when ne0 is a multiple of its block size, else Q4_K -> Q4_0 -> F16
 * (4-bit stays 4-bit where it can, as llama.cpp's quantizer falls back), Q8_0/Q4_0 -> F16. */
int preset_weight_type(int type, int64_t ne0);
/* llama.cpp's general.file_type (enum llama_ftype) for an LM type; -1 if not writable. */
int preset_file_type(int type);

err_code preset_write_lm(const preset_t *p, const preset_opts *o, const char *path, err_t *err);
err_code preset_write_mmproj(const preset_t *p, const preset_opts *o, const char *path, err_t *err);
/* The same, generating and quantizing rows on a thread pool (NULL: the caller's
 * thread); the bytes written do not depend on the number of threads. */
err_code preset_write_lm_pool(const preset_t *p, const preset_opts *o, pool_t *pool, const char *path, err_t *err);
err_code preset_write_mmproj_pool(const preset_t *p, const preset_opts *o, pool_t *pool, const char *path,
                                  err_t *err);
/* Tensor counts and parameter totals the two files will have (tests, progress). */
int64_t preset_lm_n_tensors(const preset_t *p);
int64_t preset_mmproj_n_tensors(const preset_t *p);

#endif
