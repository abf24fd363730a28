/* test_vision_npy.c — .npy round trip and parsing of files numpy writes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"
#include "testutil.h"

int main(void) {
    err_t e = {0};
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_npy_%d.npy", (int)getpid());

    /* round trip, 3-D f32 */
    float src[2 * 3 * 4];
    for (int i = 0; i < 24; i++) src[i] = (float)i * 0.25f - 3.0f;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(npy_write_f32(path, src, 3, shape, &e), &e);
    npy_array_t a;
    CHECK_OK(npy_read(path, &a, &e), &e);
    CHECK(a.dtype == NPY_F32 && a.n_dims == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4);
    CHECK(a.data && !memcmp(a.data, src, sizeof src));
    npy_free(&a);

    /* 1-D i32 must be written as "(n,)" and data must start 64-aligned */
    int32_t iv[5] = {1, -2, 3, -4, 5};
    int64_t s1 = 5;
    CHECK_OK(npy_write_i32(path, iv, 1, &s1, &e), &e);
    FILE *f = fopen(path, "rb");
    char buf[256] = {0};
    size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(got > 20 && (got - 20) % 64 == 0);
    CHECK(strstr(buf + 10, "'shape': (5,)") != NULL);
    CHECK(got > 20 && buf[got - 21] == '\n');
    CHECK_OK(npy_read(path, &a, &e), &e);
    CHECK(a.dtype == NPY_I32 && a.n_dims == 1 && a.shape[0] == 5 && !memcmp(a.data, iv, sizeof iv));
    npy_free(&a);
    remove(path);

    /* exactly what numpy 1.24 np.save writes for np.array([1.5], '<f4') */
    static const char hdr[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    unsigned char img[128 + 4];
    memset(img, ' ', sizeof img);
    memcpy(img, hdr, sizeof hdr - 1);
    img[127] = '\n';
    float one5 = 1.5f;
    memcpy(img + 128, &one5, 4);
    CHECK_OK(npy_parse(img, sizeof img, "mem", &a, &e), &e);
    CHECK(a.n_dims == 1 && a.shape[0] == 1 && ((float *)a.data)[0] == 1.5f);
    npy_free(&a);

    /* errors: size mismatch, wrong dtype, bad magic, fortran order */
    CHECK(npy_parse(img, sizeof img - 1, "mem", &a, &e) == ERR_FORMAT);
    CHECK(strstr(e.msg, "mem") != NULL);
    unsigned char bad[sizeof img];
    memcpy(bad, img, sizeof img);
    memcpy(bad + 21, "<f8", 3);
    CHECK(npy_parse(bad, sizeof bad, "mem", &a, &e) == ERR_UNSUPPORTED);
    bad[0] = 'X';
    CHECK(npy_parse(bad, sizeof bad, "mem", &a, &e) == ERR_FORMAT);
    memcpy(bad, img, sizeof img);
    char *fo = NULL;
    for (size_t i = 0; i + 5 <= sizeof bad && !fo; i++)
        if (!memcmp(bad + i, "False", 5)) fo = (char *)bad + i;
    if (!fo) return 1;
    memcpy(fo, "True ", 5);
    CHECK(npy_parse(bad, sizeof bad, "mem", &a, &e) == ERR_UNSUPPORTED);
    CHECK(npy_read("/nonexistent/x.npy", &a, &e) == ERR_IO);
    return test_result("test_vision_npy");
}
