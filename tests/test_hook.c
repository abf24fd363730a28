/* Hook registration, glob matching and in-place edits. */
#include <string.h>

#include "core/hook.h"
#include "testutil.h"

static int count_calls(void *user, const hook_info *info, float *data) {
    (void)info;
    (*(int *)user)++;
    data[0] += 1.0f;
    return 0;
}

static int stop(void *user, const hook_info *info, float *data) {
    (void)user, (void)info, (void)data;
    return 1;
}

int main(void) {
    hook_set_t hs;
    hook_set_init(&hs);
    err_t err = {0};
    CHECK(!hook_want(&hs, "blk.0.attn.pattern"));
    CHECK(!hook_want(NULL, "blk.0.attn.pattern"));
    int calls = 0;
    CHECK_OK(hook_add(&hs, "blk.*.attn.pattern", count_calls, &calls, &err), &err);
    CHECK(hook_want(&hs, "blk.0.attn.pattern"));
    CHECK(hook_want(&hs, "blk.31.attn.pattern"));
    CHECK(!hook_want(&hs, "blk.3.attn.q"));
    CHECK(!hook_want(&hs, "v.blk.3.attn.pattern"));
    CHECK(!hook_want(&hs, "blk.3.attn.pattern.x"));
    char name[HOOK_NAME_MAX];
    CHECK(hook_wantf(&hs, name, "blk.%d.attn.pattern", 7) && !strcmp(name, "blk.7.attn.pattern"));
    CHECK_OK(hook_add(&hs, "blk.3.*", count_calls, &calls, &err), &err);
    CHECK_OK(hook_add(&hs, "mm.out", count_calls, &calls, &err), &err);
    CHECK(hook_want(&hs, "blk.3.resid_post") && hook_want(&hs, "mm.out") && !hook_want(&hs, "mm.outx"));
    float v[2] = {0, 0};
    int64_t shape[1] = {2};
    CHECK_OK(hook_emit(&hs, "blk.3.attn.pattern", v, 1, shape, 0, &err), &err);
    CHECK(calls == 2 && v[0] == 2.0f); /* both matching hooks ran, in order, editing in place */
    CHECK_OK(hook_add(&hs, "*", stop, NULL, &err), &err);
    CHECK(hook_emit(&hs, "anything", v, 1, shape, 0, &err) == ERR_CALLBACK);
    CHECK(strstr(err.msg, "anything") != NULL);
    for (int i = hs.n; i < HOOK_MAX; i++) hook_add(&hs, "x", count_calls, &calls, &err);
    CHECK(hook_add(&hs, "x", count_calls, &calls, &err) == ERR_RANGE);
    return test_result("test_hook");
}
