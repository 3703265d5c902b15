// SwiGLU's gating, SiLU(gate) ⊙ up, forward and backward, compiled once per vector width and
// picked per call (cpu_level.h). σ(g) comes from e = exp(−|g|) ≤ 1, inside cephesExp's domain
// (x ≤ 0): σ = 1/(1 + e) for g ≥ 0 and e/(1 + e) below, neither of which overflows. One element
// at a time, no contraction, so every build gives the bits of SwiGLUKernelTests' Swift reference.
#include "ckernels.h"
#include "cpu_level.h"
#include "cephes_exp.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline)) float sigmoid(float g) {
    const float e = cephesExp(-cephesFromBits(cephesToBits(g) & 0x7FFFFFFFu));
    const float inverse = 1.0f / (1.0f + e);
    return g >= 0.0f ? inverse : e * inverse;
}

static inline __attribute__((always_inline))
void swiglu_forward(const float *restrict gate, const float *restrict up, float *restrict output, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const float g = gate[i];
        output[i] = g * sigmoid(g) * up[i];
    }
}

LORABENCH_DISPATCH(lorabench_swiglu_forward, swiglu_forward,
                   (const float *restrict gate, const float *restrict up, float *restrict output, size_t count),
                   (gate, up, output, count))

static inline __attribute__((always_inline))
void swiglu_backward(const float *restrict gradOutput, const float *restrict gate, const float *restrict up,
                     float *restrict gradGate, float *restrict gradUp, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const float g = gate[i], upstream = gradOutput[i], s = sigmoid(g);
        gradUp[i] = upstream * g * s;
        gradGate[i] = upstream * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

LORABENCH_DISPATCH(lorabench_swiglu_backward, swiglu_backward,
                   (const float *restrict gradOutput, const float *restrict gate, const float *restrict up,
                    float *restrict gradGate, float *restrict gradUp, size_t count),
                   (gradOutput, gate, up, gradGate, gradUp, count))
