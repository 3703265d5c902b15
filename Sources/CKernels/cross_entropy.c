// The causal-LM loss over vocabulary-wide logit rows, compiled once per vector width and picked
// per call (cpu_level.h): each row's maximum, e^(z − max) by Cephes (cephes_exp.h) summed in double
// over eight lanes added in index order (tens of thousands of float terms summed in float would
// lose the small ones), the row's loss, and the logits overwritten by the loss's gradient. No
// contraction: every build gives the bits of CrossEntropyKernelTests' Swift reference loop.
#include "ckernels.h"
#include "cpu_level.h"
#include "cephes_exp.h"
#include "lane_max.h"
#include <math.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

enum { sumLanes = 8 };

static inline __attribute__((always_inline))
void cross_entropy_rows(size_t rowStart, size_t rowEnd, size_t vocabulary, float *restrict logits, const size_t *restrict targets,
                        size_t totalRows, double *restrict losses) {
    const size_t whole = vocabulary - vocabulary % sumLanes;
    for (size_t r = rowStart; r < rowEnd; r++) {
        float *z = logits + r * vocabulary;
        const float maximum = laneMaximum(z, vocabulary);
        const float target = z[targets[r]];
        double lanes[sumLanes] = {0};
        for (size_t j = 0; j < whole; j += sumLanes) {
            for (int l = 0; l < sumLanes; l++) {
                const float e = cephesExp(z[j + l] - maximum);
                z[j + l] = e;
                lanes[l] += (double)e;
            }
        }
        double sum = 0;
        for (int l = 0; l < sumLanes; l++) sum += lanes[l];
        for (size_t j = whole; j < vocabulary; j++) {
            z[j] = cephesExp(z[j] - maximum);
            sum += (double)z[j];
        }
        losses[r] = log(sum) + (double)maximum - (double)target;
        const float inverse = (float)(1.0 / (sum * (double)totalRows));
        for (size_t j = 0; j < vocabulary; j++) z[j] *= inverse;
        z[targets[r]] -= 1.0f / (float)totalRows;
    }
}

LORABENCH_DISPATCH(lorabench_cross_entropy_rows, cross_entropy_rows,
                   (size_t rowStart, size_t rowEnd, size_t vocabulary, float *restrict logits, const size_t *restrict targets,
                    size_t totalRows, double *restrict losses),
                   (rowStart, rowEnd, vocabulary, logits, targets, totalRows, losses))
