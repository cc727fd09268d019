// ggml's own encoding, dequantization and dot products of the block types the engine adds, for
// its bit-exactness tests. Built by build-tool.sh against the llama.cpp build of
// benchmarks/engine/build-llama.sh and run by regenerate.sh:
//
//   ggml-quants OUT_DIR [TYPE=MODEL.gguf ...]
//
// writes OUT_DIR/<type>.bin for q4_K q5_K q6_K q3_K q2_K q5_0 q5_1 iq4_nl bf16 (format in
// kernel/engine/testdata/ggml-quants/README.md). A TYPE=MODEL.gguf argument gives the file whose
// first tensor of that type supplies the last row (a real llama-quantize encoding).
#include "ggml.h"
#include "ggml-cpu.h"
#include "gguf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COLS = 512, ROWS = 8, REAL_ROW = ROWS - 1, RANDOM_ROW = 6 };

typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
typedef void (*from_float_fn)(const float *x, void *y, int64_t k);

// ggml's portable C kernels (ggml-cpu/quants.c), compiled again by build-tool.sh without
// auto-vectorization or FMA contraction and renamed portable_*.
void ggml_vec_dot_q2_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q3_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q4_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q5_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void ggml_vec_dot_q6_K_q8_K_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void portable_ggml_vec_dot_q5_0_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void portable_ggml_vec_dot_q5_1_q8_1_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void portable_ggml_vec_dot_iq4_nl_q8_0_generic(int, float *, size_t, const void *, size_t, const void *, size_t, int);
void portable_quantize_row_q8_0_generic(const float *, void *, int64_t);
void portable_quantize_row_q8_1_generic(const float *, void *, int64_t);
void quantize_row_q8_K_generic(const float *, void *, int64_t);

// ggml_vec_dot_bf16's scalar path (ggml-cpu/vec.cpp): products in f32 (exact for two bf16), summed in
// double, in index order. ggml has no separately compiled generic BF16 kernel to call.
static void vec_dot_bf16_scalar(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                                int nrc) {
    (void)bs, (void)bx, (void)by, (void)nrc;
    const ggml_bf16_t *a = x, *b = y;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(ggml_bf16_to_fp32(a[i]) * ggml_bf16_to_fp32(b[i]));
    *s = (float)sum;
}

struct format {
    enum ggml_type type;
    const char *file;
    vec_dot_fn generic_dot;
    from_float_fn generic_act; // NULL: no separate portable quantizer (BF16)
    // Byte offsets of the f16 scale fields inside one block: random blocks get finite values there.
    int f16_fields[2];
    int n_f16_fields;
};

static const struct format FORMATS[] = {
    {GGML_TYPE_Q4_K, "q4_K", ggml_vec_dot_q4_K_q8_K_generic, quantize_row_q8_K_generic, {0, 2}, 2},
    {GGML_TYPE_Q5_K, "q5_K", ggml_vec_dot_q5_K_q8_K_generic, quantize_row_q8_K_generic, {0, 2}, 2},
    {GGML_TYPE_Q6_K, "q6_K", ggml_vec_dot_q6_K_q8_K_generic, quantize_row_q8_K_generic, {208}, 1},
    {GGML_TYPE_Q3_K, "q3_K", ggml_vec_dot_q3_K_q8_K_generic, quantize_row_q8_K_generic, {108}, 1},
    {GGML_TYPE_Q2_K, "q2_K", ggml_vec_dot_q2_K_q8_K_generic, quantize_row_q8_K_generic, {80, 82}, 2},
    {GGML_TYPE_Q5_0, "q5_0", portable_ggml_vec_dot_q5_0_q8_0_generic, portable_quantize_row_q8_0_generic, {0}, 1},
    {GGML_TYPE_Q5_1, "q5_1", portable_ggml_vec_dot_q5_1_q8_1_generic, portable_quantize_row_q8_1_generic, {0, 2}, 2},
    {GGML_TYPE_IQ4_NL, "iq4_nl", portable_ggml_vec_dot_iq4_nl_q8_0_generic, portable_quantize_row_q8_0_generic, {0}, 1},
    {GGML_TYPE_BF16, "bf16", vec_dot_bf16_scalar, NULL, {0}, 0},
};

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "ggml-quants: %s%s\n", msg, arg ? arg : "");
    exit(1);
}

static uint64_t lcg_state;
// Uniform in [-1, 1): the LCG of kernel/engine/src/quant/tests.rs (Knuth's MMIX constants).
static float uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(lcg_state >> 40) / 16777216.0f * 2.0f - 1.0f;
}

// The f32 rows that ggml quantizes (rows 0-5); see the README for what each one exercises.
static void source_row(int row, float *x) {
    static const float block_scale[6] = {1.0f, 100.0f, 1e-3f, 0.5f, 3e4f, 7.0f};
    for (int i = 0; i < COLS; i++) {
        float u = uniform();
        switch (row) {
        case 0: x[i] = u; break;                                            // plain, scale 1
        case 1: {                                                           // per-32 scales, a zero and an integer block
            int b = i / 32;
            if (b % 8 == 3) x[i] = 0.0f;
            else if (b % 8 == 6) x[i] = (float)((int)(lcg_state >> 60) - 8) * 0.25f;
            else x[i] = u * block_scale[b % 6];
            break;
        }
        case 2: x[i] = 0.0f; break;                                         // all zero
        case 3: x[i] = -0.1f - 2.0f * fabsf(u); break;                      // all negative: negative scales / mins
        case 4: x[i] = (i % 3 == 0 ? 65000.0f : 60000.0f) * (u < 0 ? -1.0f : 1.0f); break;  // near the f16 maximum
        case 5: x[i] = (i % 64 == 17) ? 50.0f * (u < 0 ? -1.0f : 1.0f) : 0.01f * u; break;  // one outlier per 64
        default: die("no source row", NULL);
        }
    }
}

// Random bytes with finite f16 scale fields of either sign (bf16: finite random values).
static void random_row(const struct format *f, uint8_t *dst, size_t row_bytes, size_t block_bytes) {
    if (f->type == GGML_TYPE_BF16) {
        for (int i = 0; i < COLS; i++) {
            float u = uniform();
            ((ggml_bf16_t *)dst)[i] = ggml_fp32_to_bf16(u * ldexpf(1.0f, (int)(uniform() * 120.0f)));
        }
        return;
    }
    for (size_t i = 0; i < row_bytes; i++) dst[i] = (uint8_t)(uniform() * 128.0f + 128.0f);
    for (size_t b = 0; b < row_bytes / block_bytes; b++)
        for (int k = 0; k < f->n_f16_fields; k++) {
            ggml_fp16_t h = ggml_fp32_to_fp16(uniform() * 2.0f);
            memcpy(dst + b * block_bytes + f->f16_fields[k], &h, sizeof h);
        }
}

// The first COLS elements of row 0 of the first tensor of `type` in a GGUF file.
static int real_row(const char *path, enum ggml_type type, uint8_t *dst, size_t row_bytes) {
    struct gguf_init_params params = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, params);
    if (!g) die("cannot read GGUF ", path);
    int found = 0;
    for (int64_t t = 0; t < gguf_get_n_tensors(g) && !found; t++) {
        if (gguf_get_tensor_type(g, t) != type) continue;
        FILE *fp = fopen(path, "rb");
        if (!fp || fseek(fp, (long)(gguf_get_data_offset(g) + gguf_get_tensor_offset(g, t)), SEEK_SET) != 0 ||
            fread(dst, 1, row_bytes, fp) != row_bytes)
            die("cannot read a row from ", path);
        fclose(fp);
        found = 1;
    }
    gguf_free(g);
    return found;
}

static void put_u32(FILE *fp, uint32_t v) { fwrite(&v, 4, 1, fp); }

static void write_type(const struct format *f, const char *out_dir, const char *model) {
    const struct ggml_type_traits *tt = ggml_get_type_traits(f->type);
    const struct ggml_type_traits_cpu *ct = ggml_get_type_traits_cpu(f->type);
    const enum ggml_type act_type = ct->vec_dot_type;
    const struct ggml_type_traits *at = ggml_get_type_traits(act_type);
    const size_t row_bytes = ggml_row_size(f->type, COLS), act_bytes = ggml_row_size(act_type, COLS);

    uint8_t *w = calloc(ROWS, row_bytes), *act_q = calloc(1, act_bytes), *act_q_generic = calloc(1, act_bytes);
    float *src = malloc(sizeof(float) * COLS), *deq = malloc(sizeof(float) * ROWS * COLS);
    float *act = malloc(sizeof(float) * COLS), dot[ROWS], dot_generic[ROWS];

    lcg_state = 0x243F6A8885A308D3ull ^ (uint64_t)f->type;
    for (int r = 0; r < RANDOM_ROW; r++) {
        source_row(r, src);
        ggml_quantize_chunk(f->type, src, w + r * row_bytes, 0, 1, COLS, NULL);
    }
    random_row(f, w + RANDOM_ROW * row_bytes, row_bytes, tt->type_size);
    if (!model || !real_row(model, f->type, w + REAL_ROW * row_bytes, row_bytes)) {
        if (model) fprintf(stderr, "ggml-quants: no %s tensor in %s; last row random\n", f->file, model);
        random_row(f, w + REAL_ROW * row_bytes, row_bytes, tt->type_size);
    }
    for (int r = 0; r < ROWS; r++) tt->to_float(w + r * row_bytes, deq + r * COLS, COLS);

    // The activation: mostly scale 1 with a few larger values and zeros.
    for (int i = 0; i < COLS; i++) act[i] = (i % 97 == 5) ? 0.0f : uniform() * ((i % 41 == 0) ? 8.0f : 1.0f);
    ggml_get_type_traits_cpu(act_type)->from_float(act, act_q, COLS);
    if (f->generic_act) {
        f->generic_act(act, act_q_generic, COLS);
        if (memcmp(act_q, act_q_generic, act_bytes) != 0)
            die("the x86 and generic activation quantizers differ for ", f->file);
    }
    for (int r = 0; r < ROWS; r++) {
        ct->vec_dot(COLS, &dot[r], 0, w + r * row_bytes, 0, act_q, 0, 1);
        f->generic_dot(COLS, &dot_generic[r], 0, w + r * row_bytes, 0, act_q, 0, 1);
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", out_dir, f->file);
    FILE *fp = fopen(path, "wb");
    if (!fp) die("cannot write ", path);
    fwrite("AXQF", 1, 4, fp);
    put_u32(fp, 1);
    put_u32(fp, f->type);
    put_u32(fp, (uint32_t)tt->blck_size);
    put_u32(fp, (uint32_t)tt->type_size);
    put_u32(fp, ROWS);
    put_u32(fp, COLS);
    put_u32(fp, act_type);
    put_u32(fp, (uint32_t)at->blck_size);
    put_u32(fp, (uint32_t)at->type_size);
    fwrite(w, row_bytes, ROWS, fp);
    fwrite(deq, sizeof(float), ROWS * COLS, fp);
    fwrite(act, sizeof(float), COLS, fp);
    fwrite(act_q, 1, act_bytes, fp);
    fwrite(dot, sizeof(float), ROWS, fp);
    fwrite(dot_generic, sizeof(float), ROWS, fp);
    if (fclose(fp) != 0) die("cannot write ", path);
    free(w), free(act_q), free(act_q_generic), free(src), free(deq), free(act);
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: ggml-quants OUT_DIR [TYPE=MODEL.gguf ...]", NULL);
    enum { N_FORMATS = sizeof FORMATS / sizeof FORMATS[0] };
    const char *model[N_FORMATS] = {0};
    for (int a = 2; a < argc; a++) {
        int known = 0;
        for (size_t i = 0; i < N_FORMATS; i++) {
            size_t len = strlen(FORMATS[i].file);
            if (strncmp(argv[a], FORMATS[i].file, len) == 0 && argv[a][len] == '=') model[i] = argv[a] + len + 1, known = 1;
        }
        if (!known) die("unknown TYPE=MODEL argument ", argv[a]);
    }
    ggml_cpu_init();
    for (size_t i = 0; i < N_FORMATS; i++) write_type(&FORMATS[i], argv[1], model[i]);
    return 0;
}
