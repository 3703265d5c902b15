import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

extension ScaledValue {
    /// A number, or `<k>r` / `r` with k > 0. `isValid` checks the absolute form.
    package static func parse(_ node: ManifestNode, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue {
        if let number = try? node.number(allowed: allowed, where: isValid) { return .absolute(number) }
        guard case let .scalar(scalar) = node.node, scalar.style == .plain, scalar.string.hasSuffix("r") else {
            throw node.error(allowed: allowed)
        }
        let factorText = scalar.string.dropLast()
        guard let factor = factorText.isEmpty ? 1 : Double(factorText), factor.isFinite, factor > 0 else {
            throw node.error(allowed: allowed)
        }
        return .timesRank(factor)
    }
}
