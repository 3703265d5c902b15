import Foundation
import LoRABenchKernels
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchInterop

/// Repeated wall-clock timings of one piece of work, after warm-up runs that are not counted.
public struct Timing: Sendable {
    public var seconds: [Double]

    public static func measure(warmup: Int, repeats: Int, _ work: () throws -> Void) rethrows -> Timing {
        for _ in 0..<warmup { try work() }
        var seconds: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try work()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return Timing(seconds: seconds)
    }

    public var median: Double {
        let sorted = seconds.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    public var minimum: Double { seconds.min() ?? .nan }
}
