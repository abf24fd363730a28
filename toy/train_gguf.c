/* train_gguf.c — writes the toy model as llama.cpp's two LLaVA GGUF files (contract
 * in train.h; layout in docs/gguf-llava.md). The tensor names and shapes come from
 * the model's layout table, so nothing is named twice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gguf.h"
#include "../core/quant.h"
#include "train.h"

/* llama_ftype values (llama.h): ALL_F32 = 0, MOSTLY_F16 = 1. */
static uint32_t file_type_of(int type) { return type == QT_F16 ? 1u : 0u; }

static err_code set_common(gguf_writer_t *w, const char *arch, int type) {
    err_code rc = gguf_writer_set_str(w, "general.architecture", arch);
    if (!rc) rc = gguf_writer_set_str(w, "general.name", "llava-mech-toy");
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", file_type_of(type));
    return rc;
}

static err_code set_lm_keys(gguf_writer_t *w, const tm_config *c) {
    err_code rc = ERR_OK;
    if (!rc) rc = gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->max_seq);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->d);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layer);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_head);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim);
    if (!rc) rc = gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_eps);
    if (!rc) rc = gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_base);
    if (!rc) rc = gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab);
    return rc;
}

static err_code set_clip_keys(gguf_writer_t *w, const tm_config *c) {
    err_code rc = ERR_OK;
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_vision_encoder", true);
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_text_encoder", false);
    if (!rc) rc = gguf_writer_set_bool(w, "clip.has_llava_projector", true);
    if (!rc) rc = gguf_writer_set_str(w, "clip.projector_type", "mlp");
    /* use_gelu false: the tower's activation is quick_gelu, as CLIP-L's. */
    if (!rc) rc = gguf_writer_set_bool(w, "clip.use_gelu", false);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)c->image_size);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)c->patch_size);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)c->v_width);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)c->v_ffn);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.projection_dim", (uint32_t)c->d);
    /* Legacy layout: every stored block feeds the projector (no feature_layer key). */
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)c->v_blocks);
    if (!rc) rc = gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)c->v_heads);
    if (!rc) rc = gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", c->v_eps);
    if (!rc) rc = gguf_writer_set_arr_f32(w, "clip.vision.image_mean", tr_image_mean, 3);
    if (!rc) rc = gguf_writer_set_arr_f32(w, "clip.vision.image_std", tr_image_std, 3);
    return rc;
}

/* Adds every tensor of `file`; with F16, tensors of >= 2 dims are converted into
 * half (a buffer that must outlive the write), 1-D ones stay F32 as in llama.cpp. */
static err_code add_tensors(gguf_writer_t *w, const tm_model *m, int file, int type, uint16_t *half, err_t *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_param *p = &m->table[i];
        if (p->file != file) continue;
        const float *x = m->params + p->offset;
        err_code rc;
        if (type == QT_F16 && p->n_dims >= 2) {
            uint16_t *h = half + p->offset;
            for (size_t j = 0; j < p->n; j++) h[j] = qt_f32_to_f16(x[j]);
            rc = gguf_writer_add_tensor(w, p->name, QT_F16, p->n_dims, p->ne, h, p->n * sizeof(uint16_t), err);
        } else {
            rc = gguf_writer_add_tensor(w, p->name, QT_F32, p->n_dims, p->ne, x, p->n * sizeof(float), err);
        }
        if (rc) return rc;
    }
    return ERR_OK;
}

/* Writes to path.tmp and renames: a reader never sees a half-written model. */
static err_code write_atomic(gguf_writer_t *w, const char *path, err_t *err) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    err_code rc = gguf_writer_write(w, tmp, err);
    if (!rc && rename(tmp, path) != 0) rc = err_set(err, ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
    if (rc) remove(tmp);
    free(tmp);
    return rc;
}

err_code tr_write_gguf(const tm_model *m, const tok_t *tok, int type, const char *lm_path, const char *mmproj_path,
                       err_t *err) {
    if (type != QT_F32 && type != QT_F16)
        return err_set(err, ERR_UNSUPPORTED, "toy model export: type %d is neither F32 nor F16", type);
    uint16_t *half = NULL;
    if (type == QT_F16 && !(half = malloc(m->n_params * sizeof(uint16_t))))
        return err_set(err, ERR_NOMEM, "toy model export: out of memory");
    err_code rc = ERR_OK;
    gguf_writer_t *w = gguf_writer_create();
    if (!w) {
        free(half);
        return err_set(err, ERR_NOMEM, "toy model export: out of memory");
    }
    rc = set_common(w, "llama", type);
    if (!rc) rc = set_lm_keys(w, &m->cfg);
    if (rc) err_set(err, rc, "%s: cannot set LM metadata", lm_path);
    if (!rc) rc = tok_write_keys(tok, w, err);
    if (!rc) rc = add_tensors(w, m, TM_FILE_LM, type, half, err);
    if (!rc) rc = write_atomic(w, lm_path, err);
    gguf_writer_free(w);
    if (!rc) {
        w = gguf_writer_create();
        if (!w) {
            free(half);
            return err_set(err, ERR_NOMEM, "toy model export: out of memory");
        }
        rc = set_common(w, "clip", type);
        if (!rc) rc = set_clip_keys(w, &m->cfg);
        if (rc) err_set(err, rc, "%s: cannot set mmproj metadata", mmproj_path);
        if (!rc) rc = add_tensors(w, m, TM_FILE_MMPROJ, type, half, err);
        if (!rc) rc = write_atomic(w, mmproj_path, err);
        gguf_writer_free(w);
    }
    free(half);
    return rc;
}
