import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// Pearson's correlation coefficient r of paired samples: the sign and strength of a linear
/// relation, e.g. between ΔD and ΔM (DoRA §3.2, where FT and DoRA correlate negatively and LoRA
/// positively).
///
/// nil when there are fewer than 3 pairs (two points always lie on a line, so r = ±1 says
/// nothing) or when either sample has no variance. Centred sums in Double, so a large common
/// offset does not cancel the signal.
public func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double? {
    precondition(x.count == y.count, "pearsonCorrelation needs paired samples, got \(x.count) and \(y.count) values")
    guard x.count >= 3 else { return nil }
    let meanX = x.reduce(0, +) / Double(x.count), meanY = y.reduce(0, +) / Double(y.count)
    var covariance = 0.0, varianceX = 0.0, varianceY = 0.0
    for (a, b) in zip(x, y) {
        covariance += (a - meanX) * (b - meanY)
        varianceX += (a - meanX) * (a - meanX)
        varianceY += (b - meanY) * (b - meanY)
    }
    guard varianceX > 0, varianceY > 0 else { return nil }
    return min(max(covariance / (varianceX * varianceY).squareRoot(), -1), 1)
}
