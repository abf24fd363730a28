/* cmd_toy_train.c — `llava-mech toy train`: trains the toy LLaVA on the synthetic
 * scenes (toy/train.h), with progress on stderr, resumable checkpoints, and the two
 * GGUF files at the end. Dispatched from cli/cmd_toy.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cblas.h>

#include "commands.h"
#include "core/gguf.h"
#include "core/quant.h"
#include "toy/train.h"

#include "cli_util.h"
#define fail(msg) cli_fail("toy train", 1, "%s", (msg))

#define DEFAULT_VOCAB LM_SOURCE_DIR "/toy/vocab/toy-vocab.gguf"
#define LM_NAME "llava-mech-toy-lm.gguf"
#define MMPROJ_NAME "llava-mech-toy-mmproj.gguf"

static void usage(FILE *f) {
    tr_options o;
    tr_options_default(&o);
    fprintf(f,
            "usage: llava-mech toy train [OPTIONS]\n"
            "\n"
            "Trains the toy LLaVA (CLIP-style ViT 224 px / patch 16, mlp projector, LLaMA with\n"
            "GQA) on scenes rendered on the fly (train split seed %d), then writes\n"
            "OUT_DIR/" LM_NAME " and OUT_DIR/" MMPROJ_NAME ".\n"
            "\n"
            "  --steps N          optimiser steps (default %d)\n"
            "  --batch B          examples per step (default %d)\n"
            "  --lr LR            peak learning rate (default %g); --lr-min (default %g)\n"
            "  --init gpt2|lecun  initialisation: N(0, 0.02) (default) or N(0, 1/fan_in)\n"
            "  --vision-lr F      learning-rate factor of the vision tower v.* (default 1)\n"
            "  --keep-ramp K      first K steps: background image tokens hidden from the LM, fading\n"
            "                     in linearly (default 0 = all visible; see toy/train.c)\n"
            "  --aux-lens W       weight of the layer-0 lens loss: object patches predict their\n"
            "                     colour and shape words through the output head (default 0)\n"
            "  --lens-only K      first K steps: only the lens loss (tower + projector; the LM\n"
            "                     is not run), then the full model (default 0)\n"
            "  --image-grad F     factor (> 0) on the answer loss's gradient into the projector and the\n"
            "                     tower (default 1; the lens loss is not scaled)\n"
            "  --warmup W         linear warm-up steps (default %d), then cosine decay\n"
            "  --wd WD            AdamW weight decay on matrices (default %g)\n"
            "  --seed S           parameter initialisation seed (default %llu)\n"
            "  --curriculum K     first K steps: scenes with at most 1, then 2, then 3 objects\n"
            "                     (a third of K each; default 0 = none)\n"
            "  --threads T        worker threads (default 2); results are bit-reproducible\n"
            "                     for a seed and thread count\n"
            "  --checkpoint FILE  checkpoint path (default OUT_DIR/llava-mech-toy.ckpt)\n"
            "  --ckpt-every K     write the checkpoint every K steps (default 50)\n"
            "  --resume           continue from the checkpoint (same config, batch, seeds)\n"
            "  --out-dir DIR      where the GGUF files go (default .)\n"
            "  --type f32|f16     tensor type of the written files (default f32)\n"
            "  --eval-every K     validation accuracy every K steps (default 100; 0 = never)\n"
            "  --val-n N          validation examples per question type (default 40, seed %d)\n"
            "  --test-n N         after training, greedy accuracy on N test examples per type\n"
            "                     (seed %d; default 0 = skip)\n"
            "  --vocab FILE       tokenizer GGUF (default toy/vocab/toy-vocab.gguf)\n"
            "\n"
            "With --resume and a checkpoint that already reached --steps, nothing is trained:\n"
            "the files are written (and --test-n evaluated) from the checkpoint.\n",
            TR_SEED_TRAIN, o.steps, o.batch, (double)o.lr, (double)o.lr_min, o.warmup, (double)o.weight_decay,
            (unsigned long long)o.seed, TR_SEED_VAL, TR_SEED_TEST);
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_f(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0)) return false;
    *out = (float)v;
    return true;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void print_eval(FILE *f, const char *what, const tr_eval *ev) {
    fprintf(f, "%s acc %.4f (", what, tr_eval_accuracy(ev, -1));
    for (int q = 0; q < SC_N_QTYPES; q++)
        fprintf(f, "%s%s %.3f", q ? " " : "", sc_qtype_names[q], tr_eval_accuracy(ev, q));
    fprintf(f, ") loss %.4f\n", ev->loss);
}

int cmd_toy_train(int argc, char **argv) {
    tr_options o;
    tr_options_default(&o);
    o.threads = 2;
    const char *ckpt = NULL, *out_dir = ".", *vocab = DEFAULT_VOCAB;
    bool resume = false;
    int64_t ckpt_every = 50, eval_every = 100, val_n = 40, test_n = 0;
    int type = QT_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x;
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--resume")) {
            resume = true;
            continue;
        } else if (!v) {
            fprintf(stderr, "llava-mech toy train: unknown option or missing value: %s\n", a);
            return 2;
        } else if (!strcmp(a, "--steps")) {
            ok = parse_i64(v, 1, 100000000, &x), o.steps = (int)x;
        } else if (!strcmp(a, "--batch")) {
            ok = parse_i64(v, 1, 4096, &x), o.batch = (int)x;
        } else if (!strcmp(a, "--warmup")) {
            ok = parse_i64(v, 1, 100000000, &x), o.warmup = (int)x;
        } else if (!strcmp(a, "--threads")) {
            ok = parse_i64(v, 1, 256, &x), o.threads = (int)x;
        } else if (!strcmp(a, "--seed")) {
            ok = parse_i64(v, 0, INT64_MAX, &x), o.seed = (uint64_t)x;
        } else if (!strcmp(a, "--curriculum")) {
            ok = parse_i64(v, 0, 100000000, &x), o.curriculum = (int)x;
        } else if (!strcmp(a, "--init")) {
            o.init = !strcmp(v, "lecun") ? TM_INIT_LECUN : TM_INIT_GPT2;
            ok = !strcmp(v, "lecun") || !strcmp(v, "gpt2");
        } else if (!strcmp(a, "--keep-ramp")) {
            ok = parse_i64(v, 0, 100000000, &x), o.keep_ramp = (int)x;
        } else if (!strcmp(a, "--lens-only")) {
            ok = parse_i64(v, 0, 100000000, &x), o.lens_only = (int)x;
        } else if (!strcmp(a, "--image-grad")) {
            ok = parse_f(v, &o.image_grad);
        } else if (!strcmp(a, "--aux-lens")) {
            ok = parse_f(v, &o.aux_lens);
        } else if (!strcmp(a, "--vision-lr")) {
            ok = parse_f(v, &o.vision_lr_scale);
        } else if (!strcmp(a, "--lr")) {
            ok = parse_f(v, &o.lr);
        } else if (!strcmp(a, "--lr-min")) {
            ok = parse_f(v, &o.lr_min);
        } else if (!strcmp(a, "--wd")) {
            ok = parse_f(v, &o.weight_decay);
        } else if (!strcmp(a, "--checkpoint")) {
            ckpt = v;
        } else if (!strcmp(a, "--ckpt-every")) {
            ok = parse_i64(v, 0, INT64_MAX, &ckpt_every);
        } else if (!strcmp(a, "--out-dir")) {
            out_dir = v;
        } else if (!strcmp(a, "--type")) {
            type = qt_from_name(v);
            ok = type == QT_F32 || type == QT_F16;
        } else if (!strcmp(a, "--eval-every")) {
            ok = parse_i64(v, 0, INT64_MAX, &eval_every);
        } else if (!strcmp(a, "--val-n")) {
            ok = parse_i64(v, 1, 1000000, &val_n);
        } else if (!strcmp(a, "--test-n")) {
            ok = parse_i64(v, 0, 1000000, &test_n);
        } else if (!strcmp(a, "--vocab")) {
            vocab = v;
        } else {
            fprintf(stderr, "llava-mech toy train: unknown option %s (try --help)\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "llava-mech toy train: bad value for %s: %s\n", a, v);
            return 2;
        }
        i++;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "llava-mech toy train: %s: cannot create: %s\n", out_dir, strerror(errno));
        return 1;
    }
    char ckpt_buf[4096], lm_path[4096], mm_path[4096];
    if (!ckpt) {
        snprintf(ckpt_buf, sizeof ckpt_buf, "%s/llava-mech-toy.ckpt", out_dir);
        ckpt = ckpt_buf;
    }
    snprintf(lm_path, sizeof lm_path, "%s/%s", out_dir, LM_NAME);
    snprintf(mm_path, sizeof mm_path, "%s/%s", out_dir, MMPROJ_NAME);

    /* Every worker calls OpenBLAS at once on small matrices: one BLAS thread each. */
    openblas_set_num_threads(1);

    err_t e = {0};
    gguf_t *g = NULL;
    tok_t *tok = NULL;
    tr_trainer *t = NULL;
    int rc = 1;
    if (gguf_open(&g, vocab, &e) || tok_load(&tok, g, &e)) goto done;
    tm_config cfg;
    tm_config_default(&cfg, tok_n_vocab(tok));
    if (tr_create(&t, &cfg, &o, tok, &e)) goto done;
    if (resume) {
        if (tr_checkpoint_load(t, ckpt, &e)) goto done;
        fprintf(stderr, "resumed %s at step %lld\n", ckpt, (long long)tr_steps_done(t));
    }
    const tm_model *m = tr_model(t);
    fprintf(stderr,
            "toy model: %zu parameters (ViT %dx%d w%d, LM %dx d%d %d/%d heads, vocab %d); batch %d, %d steps, "
            "%d threads\n",
            m->n_params, cfg.v_blocks, cfg.v_heads, cfg.v_width, cfg.n_layer, cfg.d, cfg.n_head, cfg.n_kv_head,
            cfg.n_vocab, o.batch, o.steps, o.threads);
    double t_start = now_s(), t_last = t_start;
    int64_t last_step = tr_steps_done(t);
    double loss_acc = 0, aux_acc = 0;
    int loss_n = 0;
    while (tr_steps_done(t) < o.steps) {
        tr_step_stats st;
        if (tr_step(t, &st, &e)) goto done;
        loss_acc += st.loss, aux_acc += st.aux_loss, loss_n++;
        bool eval_now = eval_every > 0 && (st.step % eval_every == 0 || st.step == o.steps);
        if (st.step % 10 == 0 || st.step == o.steps || eval_now) {
            double now = now_s();
            fprintf(stderr, "step %lld/%d loss %.4f aux %.4f lr %.3e gnorm %.3f ex/s %.1f elapsed %.0fs\n",
                    (long long)st.step, o.steps, loss_acc / loss_n, aux_acc / loss_n, (double)st.lr, st.grad_norm,
                    (double)(st.step - last_step) * o.batch / (now - t_last), now - t_start);
            t_last = now, last_step = st.step, loss_acc = 0, aux_acc = 0, loss_n = 0;
        }
        if (eval_now) {
            tr_eval ev;
            if (tr_evaluate(t, TR_SEED_VAL, val_n, &ev, &e)) goto done;
            char what[64];
            snprintf(what, sizeof what, "step %lld val", (long long)st.step);
            print_eval(stderr, what, &ev);
            t_last = now_s();
        }
        if ((ckpt_every > 0 && st.step % ckpt_every == 0) || st.step == o.steps) {
            if (tr_checkpoint_save(t, ckpt, &e)) goto done;
        }
    }
    if (tr_write_gguf(m, tok, type, lm_path, mm_path, &e)) goto done;
    fprintf(stderr, "wrote %s and %s (%.0f s)\n", lm_path, mm_path, now_s() - t_start);
    if (test_n > 0) {
        tr_eval ev;
        double t0 = now_s();
        if (tr_evaluate(t, TR_SEED_TEST, test_n, &ev, &e)) goto done;
        char what[96];
        snprintf(what, sizeof what, "test (seed %d, %lld per type, greedy)", TR_SEED_TEST, (long long)test_n);
        print_eval(stdout, what, &ev);
        fprintf(stderr, "test evaluation %.0f s\n", now_s() - t0);
    }
    rc = 0;
done:
    if (rc) fail(e.msg);
    tr_free(t);
    tok_free(tok);
    gguf_close(g);
    return rc;
}
