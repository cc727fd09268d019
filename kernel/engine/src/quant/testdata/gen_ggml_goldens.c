// Writes ggml's own quantization of a deterministic input, for the engine's
// bit-exactness tests (quant/tests.rs reads ggml_goldens.bin). Build against a
// llama.cpp CPU build (see benchmarks/engine/build-llama.sh):
//   L=~/.cache/axiom/llama.cpp/build-0.3.36/ggml/src
//   cc -O2 gen_ggml_goldens.c $L/libggml-cpu.a $L/libggml-base.a -lm -lstdc++ -fopenmp -o gen
//   ./gen > ggml_goldens.bin
// Sections, in order: q4_0_ref, q4_1_ref, q8_0_ref, the CPU backend's
// run-time quantize_row_q8_0 and quantize_row_q8_1 (x86 AVX2 build), and
// the f16 conversion of every input value.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 4096 };
typedef uint16_t ggml_fp16_t;

void quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_1_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_0(const float *x, void *y, int64_t k);
void quantize_row_q8_1(const float *x, void *y, int64_t k);
ggml_fp16_t ggml_fp32_to_fp16(float x);

// The same generator as quant/tests.rs `golden_input`.
static void input(float *x) {
    uint64_t s = 0x243F6A8885A308D3ull;
    static const float scale[5] = {1.0f, 100.0f, 1e-3f, 0.5f, 3e4f};
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int b = i / 32;
        float u = (float)(s >> 40) / 16777216.0f * 2.0f - 1.0f;
        if (b % 11 == 4) x[i] = 0.0f;
        else if (b % 11 == 7) x[i] = (float)((int)(s >> 60) - 8) * 0.25f;
        else x[i] = u * scale[b % 5];
    }
}

int main(void) {
    static float x[N];
    static unsigned char buf[N * 2];
    input(x);
    quantize_row_q4_0_ref(x, buf, N); fwrite(buf, 18, N / 32, stdout);
    quantize_row_q4_1_ref(x, buf, N); fwrite(buf, 20, N / 32, stdout);
    quantize_row_q8_0_ref(x, buf, N); fwrite(buf, 34, N / 32, stdout);
    quantize_row_q8_0(x, buf, N); fwrite(buf, 34, N / 32, stdout);
    quantize_row_q8_1(x, buf, N); fwrite(buf, 36, N / 32, stdout);
    for (int i = 0; i < N; i++) { ggml_fp16_t h = ggml_fp32_to_fp16(x[i]); fwrite(&h, 2, 1, stdout); }
    return 0;
}
