import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// An input the analysis functions cannot measure, with what was wrong and what was expected.
public enum AnalysisError: Error, Equatable, CustomStringConvertible {
    /// Two matrices that must agree in shape (or in one dimension) do not.
    case shapeMismatch(operation: String, first: [Int], second: [Int], requirement: String)
    /// A matrix with no rows or columns, for which the statistic is an empty average.
    case empty(operation: String, shape: [Int])
    /// A subspace rank outside 1...maximum.
    case rankOutOfRange(operation: String, rank: Int, maximum: Int)
    /// An adapter whose update has no down- and up-projection to compare.
    case noFactors(module: String, adapter: String)
    /// Two adapters to compare that adapt no common module.
    case nothingShared(first: String, second: String)
    /// A name for the files written that is not a plain file name (it could leave the analysis folder).
    case invalidFileName(name: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, first, second, requirement):
            return "\(operation): shapes \(first) and \(second) differ; \(requirement)"
        case let .empty(operation, shape):
            return "\(operation): the \(shape[0])x\(shape[1]) input is empty; it needs at least one row and one column"
        case let .rankOutOfRange(operation, rank, maximum):
            return "\(operation): rank \(rank) is out of range; it must be between 1 and \(maximum), the smaller dimension"
        case let .nothingShared(first, second):
            return "\(first) and \(second) share no adapted module, so there is nothing to compare"
        case let .invalidFileName(name):
            return "--name '\(name)' cannot name files; allowed: \(FileName.allowed)"
        case let .noFactors(module, adapter):
            return "\(module): a \(adapter) adapter has no down- and up-projection whose subspaces could be compared"
        }
    }
}
