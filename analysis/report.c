#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/chart.h"
#include "analysis/overlay.h"
#include "core/npy.h"
#include "core/path.h"

static void path_join(char *buf, size_t cap, const char *dir, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static err_code save_canvas(canvas_t *c, const rp_context *ctx, const char *name, cJSON *figures, err_t *err) {
    char path[4096];
    path_join(path, sizeof path, ctx->outdir, name);
    err_code rc = canvas_write_png(c, path, err);
    canvas_free(c);
    if (!rc) cJSON_AddItemToArray(figures, cJSON_CreateString(name));
    return rc;
}

static err_code method_figures(const rp_context *ctx, const ex_result *r, cJSON *figures, err_t *err) {
    const char *mname = ex_method_name(r->method);
    char title[256], sub[320], name[128];
    overlay_style st;
    overlay_style_default(&st);
    st.cmap = ctx->cmap;
    st.nearest = ctx->nearest;
    st.font = ctx->font;
    snprintf(title, sizeof title, "%s  target \"%s\"", mname, ctx->target_word);
    snprintf(sub, sizeof sub, "%s; %s upsampling; pipeline %s", r->agg, ctx->nearest ? "nearest" : "bilinear",
             pp_pipeline_name(ctx->geom->pipeline));
    st.title = title;
    st.subtitle = sub;
    err_code rc = ERR_OK;
    canvas_t c;
    if (r->map) {
        const double S = ctx->model_image->w;
        overlay_affine model = {.sx = ctx->grid_w / S, .ox = 0, .sy = ctx->grid_h / S, .oy = 0};
        if ((rc = overlay_render(&c, ctx->model_image->rgb, ctx->model_image->w, ctx->model_image->h, r->map,
                                 ctx->grid_h, ctx->grid_w, &model, &st, err)))
            return rc;
        snprintf(name, sizeof name, "%s_overlay.png", mname);
        if ((rc = save_canvas(&c, ctx, name, figures, err))) return rc;
        overlay_affine orig;
        pp_grid_affine(ctx->geom, &orig.sx, &orig.ox, &orig.sy, &orig.oy);
        if ((rc = overlay_render(&c, ctx->original->rgb, ctx->original->w, ctx->original->h, r->map, ctx->grid_h,
                                 ctx->grid_w, &orig, &st, err)))
            return rc;
        snprintf(name, sizeof name, "%s_overlay_original.png", mname);
        if ((rc = save_canvas(&c, ctx, name, figures, err))) return rc;
    }
    if (r->n_maps > 0 && r->maps) {
        const char **labels = calloc((size_t)r->n_maps, sizeof *labels);
        if (!labels) return err_set(err, ERR_NOMEM, "report: out of memory");
        for (int i = 0; i < r->n_maps; i++) labels[i] = r->map_labels ? r->map_labels[i] : NULL;
        overlay_style gs = st;
        if (r->method == EX_VIT_ROLLOUT)
            snprintf(sub, sizeof sub, "ViT CLS rollout and the LM rollout composed with it, shared colour scale");
        else
            snprintf(sub, sizeof sub, "one map per %s, shared colour scale",
                     r->method == EX_HEADS ? "top head" : r->method == EX_LOGIT_LENS ? "residual" : "layer");
        gs.subtitle = sub;
        rc = overlay_grid(&c, r->maps, r->n_maps, ctx->grid_h, ctx->grid_w, labels, 0, false, &gs, err);
        free(labels);
        if (rc) return rc;
        snprintf(name, sizeof name, "%s_layers.png", mname);
        if ((rc = save_canvas(&c, ctx, name, figures, err))) return rc;
    }
    if (r->heat) {
        overlay_style hs = st;
        hs.title = r->heat_title;
        hs.subtitle = title;
        const char *label = "layers (rows) x heads (columns)";
        if ((rc = overlay_grid(&c, r->heat, 1, r->heat_rows, r->heat_cols, &label, 1, false, &hs, err))) return rc;
        snprintf(name, sizeof name, "%s_heads.png", mname);
        if ((rc = save_canvas(&c, ctx, name, figures, err))) return rc;
    }
    if (r->n_series > 0) {
        chart_series s[EX_MAX_SERIES];
        for (int i = 0; i < r->n_series; i++) s[i] = (chart_series){r->series[i].name, r->series[i].y};
        const char **ticks = NULL;
        if (r->xticks) {
            ticks = calloc((size_t)r->n_points, sizeof *ticks);
            if (!ticks) return err_set(err, ERR_NOMEM, "report: out of memory");
            for (int i = 0; i < r->n_points; i++) ticks[i] = r->xticks[i];
        }
        chart_spec spec = {.kind = r->chart_bars ? CHART_BAR : CHART_LINE, .title = r->chart_title,
                           .xlabel = r->xlabel, .ylabel = r->ylabel, .n = r->n_points, .xticks = ticks,
                           .font = ctx->font};
        rc = chart_render(&c, &spec, s, r->n_series, err);
        free(ticks);
        if (rc) return rc;
        snprintf(name, sizeof name, "%s_chart.png", mname);
        if ((rc = save_canvas(&c, ctx, name, figures, err))) return rc;
    }
    return ERR_OK;
}

static err_code method_arrays(const rp_context *ctx, const ex_result *r, cJSON *arrays, err_t *err) {
    for (int i = 0; i < r->n_arrays; i++) {
        const ex_array *a = &r->arrays[i];
        char name[128], path[4096];
        snprintf(name, sizeof name, "%s_%s.npy", ex_method_name(r->method), a->name);
        path_join(path, sizeof path, ctx->outdir, name);
        err_code rc = a->is_int ? npy_write_i32(path, a->data, a->n_dims, a->shape, err)
                                : npy_write_f32(path, a->data, a->n_dims, a->shape, err);
        if (rc) return rc;
        cJSON_AddStringToObject(arrays, a->name, name);
    }
    return ERR_OK;
}

static cJSON *preprocess_json(const rp_context *ctx) {
    const pp_geom *g = ctx->geom;
    cJSON *pp = cJSON_CreateObject();
    cJSON_AddStringToObject(pp, "pipeline", pp_pipeline_name(g->pipeline));
    cJSON_AddNumberToObject(pp, "image_size", g->image_size);
    cJSON_AddNumberToObject(pp, "patch_size", g->patch_size);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddItemToObject(t, "sx", ex_json_number(g->sx));
    cJSON_AddItemToObject(t, "sy", ex_json_number(g->sy));
    cJSON_AddItemToObject(t, "ox", ex_json_number(g->ox));
    cJSON_AddItemToObject(t, "oy", ex_json_number(g->oy));
    cJSON_AddStringToObject(t, "meaning", "original pixel (x, y) -> model pixel (x*sx+ox, y*sy+oy)");
    cJSON_AddItemToObject(pp, "transform", t);
    cJSON *boxes = cJSON_CreateArray();
    for (int r = 0; r < ctx->grid_h; r++)
        for (int c = 0; c < ctx->grid_w; c++) {
            double b[4];
            if (pp_cell_box(g, r, c, b)) {
                float bf[4] = {(float)b[0], (float)b[1], (float)b[2], (float)b[3]};
                cJSON_AddItemToArray(boxes, ex_json_floats(bf, 4));
            } else {
                cJSON_AddItemToArray(boxes, cJSON_CreateNull());
            }
        }
    cJSON_AddItemToObject(pp, "cell_boxes", boxes);
    return pp;
}

err_code report_write(const rp_context *ctx, ex_result *results, int n, const double *seconds, char *report_path,
                      size_t cap, err_t *err) {
    err_code rc = path_mkdir_p(ctx->outdir, err);
    if (rc) return rc;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "question", ctx->question);
    cJSON_AddStringToObject(root, "answer", ctx->answer ? ctx->answer : "");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "word", ctx->target_word);
    cJSON_AddNumberToObject(t, "id", ctx->target_id);
    if (ctx->target_piece) cJSON_AddStringToObject(t, "piece", ctx->target_piece);
    cJSON_AddStringToObject(t, "source", ctx->target_source);
    cJSON_AddNumberToObject(t, "position", (double)ctx->T);
    cJSON_AddItemToObject(t, "p", ex_json_number(ctx->p_target));
    cJSON_AddItemToObject(t, "logp", ex_json_number(ctx->logp_target));
    cJSON_AddItemToObject(root, "target", t);
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "path", ctx->image_path);
    cJSON_AddNumberToObject(img, "width", ctx->original->w);
    cJSON_AddNumberToObject(img, "height", ctx->original->h);
    cJSON_AddItemToObject(root, "image", img);
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "lm", ctx->lm_path);
    cJSON_AddStringToObject(model, "mmproj", ctx->mmproj_path);
    cJSON_AddItemToObject(root, "model", model);
    cJSON *span = cJSON_CreateArray();
    cJSON_AddItemToArray(span, cJSON_CreateNumber((double)ctx->img_start));
    cJSON_AddItemToArray(span, cJSON_CreateNumber((double)(ctx->img_start + ctx->n_image)));
    cJSON_AddItemToObject(root, "image_span", span);
    cJSON *grid = cJSON_CreateArray();
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(ctx->grid_h));
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(ctx->grid_w));
    cJSON_AddItemToObject(root, "grid", grid);
    cJSON_AddItemToObject(root, "preprocess", preprocess_json(ctx));
    cJSON_AddStringToObject(root, "upsampling", ctx->nearest ? "nearest" : "bilinear");
    cJSON_AddStringToObject(root, "colormap", cmap_name(ctx->cmap));
    cJSON *methods = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "methods", methods);

    for (int i = 0; i < n && !rc; i++) {
        ex_result *r = &results[i];
        cJSON *m = r->json ? r->json : cJSON_CreateObject();
        r->json = NULL;
        cJSON_AddItemToObject(methods, ex_method_name(r->method), m);
        cJSON_AddStringToObject(m, "aggregation", r->agg);
        if (seconds) cJSON_AddItemToObject(m, "seconds", ex_json_number(seconds[i]));
        cJSON *figures = cJSON_CreateArray(), *arrays = cJSON_CreateObject();
        cJSON_AddItemToObject(m, "figures", figures);
        cJSON_AddItemToObject(m, "arrays", arrays);
        if (!(rc = method_figures(ctx, r, figures, err))) rc = method_arrays(ctx, r, arrays, err);
    }
    if (!rc) {
        char path[4096];
        path_join(path, sizeof path, ctx->outdir, "report.json");
        char *text = cJSON_Print(root);
        FILE *f = text ? fopen(path, "w") : NULL;
        if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF) rc = err_set(err, ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        if (f && fclose(f) != 0 && !rc) rc = err_set(err, ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        free(text);
        if (!rc && report_path) snprintf(report_path, cap, "%s", path);
    }
    cJSON_Delete(root);
    return rc;
}
