import LoRABenchKernels
import LoRABenchAdapters

/// One Linear of a pretrained model: the adapter that replaced it, or the frozen base layer alone.
package enum AdaptableLinear {
    case frozen(FrozenLinear)
    case adapted(any Adapter)

    /// x [N, in] → y = x·W0ᵀ + b [N, out] (b is zero for a model without biases), always a new
    /// matrix: the adapters that read it, and DoRA's that wrote it, may keep it for backward, and a
    /// reused buffer would then be copied on write instead.
    package func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        switch self {
        case let .adapted(adapter):
            return try adapter.forward(x, training: training)
        case let .frozen(linear):
            var y = Matrix.uninitializedActivation(x.rows, linear.outFeatures)
            linear.withWeight { gemm(x, .n, $0, .t, into: &y) }
            addRowVector(linear.bias.value, to: &y)
            return y
        }
    }

    /// ∂L/∂y [N, out] → ∂L/∂x [N, in], stored into `gradInput` or added to it; an adapter also
    /// accumulates its parameter gradients.
    package func backward(_ gradOutput: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        switch self {
        case let .adapted(adapter):
            try adapter.backward(gradOutput, into: &gradInput, accumulate: accumulate)
        case let .frozen(linear):
            linear.backward(gradOutput, into: &gradInput, accumulate: accumulate)
        }
    }

    /// The frozen base, adapted or not.
    package var base: FrozenLinear {
        switch self {
        case let .frozen(linear): return linear
        case let .adapted(adapter): return adapter.base
        }
    }

    /// Parameter gradients only, for a layer whose input needs no gradient: nothing to do when frozen.
    package func backwardParameters(_ gradOutput: Matrix) throws {
        if case let .adapted(adapter) = self { _ = try adapter.backward(gradOutput) }
    }

    package var isAdapted: Bool {
        if case .adapted = self { return true }
        return false
    }
}
