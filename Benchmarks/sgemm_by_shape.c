// Where a step's GEMM time goes, by shape: an LD_PRELOAD library that wraps cblas_sgemm, times
// every call and, when the process exits, appends per shape (transposes, m, n, k) the calls, the
// seconds and the GFLOP/s to the file named by SGEMM_BY_SHAPE_OUT. Calls that LoRABench routes
// to its own kernels (NarrowProduct) never reach cblas_sgemm and are not counted.
//
//   gcc -O2 -shared -fPIC -o /tmp/sgemm_by_shape.so Benchmarks/sgemm_by_shape.c -ldl
//   SGEMM_BY_SHAPE_OUT=/tmp/shapes.txt LD_PRELOAD=/tmp/sgemm_by_shape.so
//     .build/release/lorabench bench model --variant lora --repeats 10 --warmup 1
// (the last two lines are one command).
//
// Divide by the steps the child ran (warm-up + repeats) for per-step numbers.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_function)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                               float, float *, int);

enum { maximumShapes = 512 };
static struct { int transposeA, transposeB, m, n, k; long calls; double seconds; } shapes[maximumShapes];
static int shapeCount;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void cblas_sgemm(int order, int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    static sgemm_function real;
    if (!real) real = (sgemm_function)dlsym(RTLD_NEXT, "cblas_sgemm");
    const double start = now();
    real(order, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    const double seconds = now() - start;
    int i = 0;
    while (i < shapeCount && !(shapes[i].transposeA == transposeA && shapes[i].transposeB == transposeB &&
                               shapes[i].m == m && shapes[i].n == n && shapes[i].k == k)) i++;
    if (i == maximumShapes) return;
    if (i == shapeCount) {
        shapeCount++;
        shapes[i].transposeA = transposeA, shapes[i].transposeB = transposeB;
        shapes[i].m = m, shapes[i].n = n, shapes[i].k = k;
    }
    shapes[i].calls++;
    shapes[i].seconds += seconds;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("SGEMM_BY_SHAPE_OUT");
    FILE *out = path ? fopen(path, "a") : NULL;
    if (!out) return;
    fprintf(out, "opA opB m n k calls seconds GFLOP/s\n");
    for (int i = 0; i < shapeCount; i++)
        fprintf(out, "%c %c %d %d %d %ld %.4f %.1f\n", shapes[i].transposeA == 112 ? 't' : 'n',
                shapes[i].transposeB == 112 ? 't' : 'n', shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].calls,
                shapes[i].seconds, 2.0 * shapes[i].m * shapes[i].n * (double)shapes[i].k * shapes[i].calls / shapes[i].seconds / 1e9);
    fclose(out);
}
