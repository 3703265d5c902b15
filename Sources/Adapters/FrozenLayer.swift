import LoRABenchKernels

/// A module that a run does not adapt: the frozen base layer alone, so that a model can mix
/// adapted and untouched layers behind the one `Adapter` interface. It has no parameters and
/// rank 0 (loralib's "r = 0 means the base layer").
package final class FrozenLayer: Adapter {
    package let base: FrozenLinear
    package let rank = 0
    package let scaling: Float = 0
    package let isMerged = false

    package init(base: FrozenLinear) { self.base = base }

    package var parameters: [Parameter] { [] }

    package func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        try checkInput(x)
        return base.forward(x)
    }

    /// ∂x = G·W0 [N, in] for G [N, out]; nothing of its own to accumulate.
    package func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        try checkGradient(g, rows: g.rows)
        base.backward(g, into: &gradInput, accumulate: accumulate)
    }

    package func deltaWeight() -> Matrix { .zeros(base.outFeatures, base.inFeatures) }
    package func merge() {}
    package func unmerge() {}
}
