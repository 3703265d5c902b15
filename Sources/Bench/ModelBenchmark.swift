import Foundation

#if canImport(Glibc)
import Glibc
#endif
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchInterop

/// One training step of the real model (forward + backward + AdamW, and AdaLoRA's allocation) at
/// a fixed batch, against this machine's sgemm throughput: issue 5's benchmark.
public struct ModelBenchmark {
    public struct Row: Sendable {
        /// The variant's manifest name.
        public var variant: String
        public var timing: Timing
        /// Median seconds per step spent in the method's allocation (AdaLoRA); 0 otherwise.
        public var allocationSeconds: Double
        public var flops: Double
        public var peakResidentMiB: Double
        public var trainableParameters: Int
    }

    public var batch: Int
    public var sequence: Int
    public var rank: Int
    public var warmup: Int
    public var repeats: Int

    public init(batch: Int = 32, sequence: Int = 64, rank: Int = 8, warmup: Int = 2, repeats: Int = 5) {
        self.batch = batch
        self.sequence = sequence
        self.rank = rank
        self.warmup = warmup
        self.repeats = repeats
    }

    /// FLOPs of one step. Per layer, forward: six frozen linears 2·N·C·(4C + 2F) (Q, K, V, O and
    /// the two feed-forward ones; F = intermediate size) and attention 4·N·T·C; backward: ∂x of
    /// every linear (the same again; the frozen weights need no ∂W) and 8·N·T·C for attention.
    /// Each rank-r adapter adds 4·N·r·(in + out) over forward and backward.
    public static func flops(config: BertConfig, batch: Int, sequence: Int, rank: Int, adapted: [(inFeatures: Int, outFeatures: Int)]) -> Double {
        let n = Double(batch * sequence), c = Double(config.hiddenSize), f = Double(config.intermediateSize), t = Double(sequence)
        let linear = 2 * n * c * (4 * c + 2 * f)
        let perLayer = 2 * linear + 12 * n * t * c
        let adapters = adapted.reduce(0.0) { $0 + 4 * n * Double(rank) * Double($1.inFeatures + $1.outFeatures) }
        return Double(config.layerCount) * perLayer + adapters
    }

    /// Times the variant called `variant` (a registry name, at its default settings, as a manifest's
    /// `- <name>` gets it) with rank-r adapters (α = 2r) on all six module types.
    public func run(_ variant: String, files: ModelFiles) throws -> Row {
        let steps = warmup + repeats
        let plan = try VariantRegistry.plan(named: variant, for: RunShape(rank: rank, alpha: Double(2 * rank), steps: steps + 1,
                                                                           targetModules: BertEncoder.allLinearTargets))
        let encoder = try BertEncoder(files: files, labelCount: 2, seed: 0, plan: plan)
        let layers = encoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
        let timedMethod = TimedMethod(try plan.makeMethod(layers: layers))
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: encoder.trainableParameters, learningRate: 1e-4)])
        var rng = SplitMix64(seed: 0)
        let ids = (0..<(batch * sequence)).map { _ in 1000 + Int(rng.next() % 29000) }
        let mask = [Int](repeating: 1, count: batch * sequence)
        let labels = (0..<batch).map { _ in Int(rng.next() % 2) }
        var step = 0
        let timing = try Timing.measure(warmup: warmup, repeats: repeats) {
            _ = try trainingStep(step, optimizer: optimizer, method: timedMethod) {
                let loss = try encoder.loss(inputIDs: ids, attentionMask: mask, batchSize: batch, labels: labels).loss
                try encoder.backward()
                return loss
            }
            step += 1
        }
        let allocation = Timing(seconds: Array(timedMethod.seconds.suffix(repeats))).median
        let flops = Self.flops(config: encoder.config, batch: batch, sequence: sequence, rank: rank,
                               adapted: encoder.adapters.map { ($0.adapter.inFeatures, $0.adapter.outFeatures) })
        return Row(variant: variant, timing: timing, allocationSeconds: allocation, flops: flops,
                   peakResidentMiB: Self.peakResidentMiB(), trainableParameters: encoder.trainableParameters.reduce(0) { $0 + $1.count })
    }

    /// The process's peak resident set size so far (getrusage ru_maxrss, in KiB on Linux).
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// sgemm throughput at the model's largest linear shape, [N, C]·[F, C]ᵀ.
    public func sgemmGFLOPS(config: BertConfig) -> Double {
        var rng = SplitMix64(seed: 1)
        let n = batch * sequence
        let x = Matrix.gaussian(n, config.hiddenSize, std: 1, using: &rng)
        let w = Matrix.gaussian(config.intermediateSize, config.hiddenSize, std: 1, using: &rng)
        var y = Matrix.zeros(n, config.intermediateSize)
        let timing = Timing.measure(warmup: 3, repeats: 15) { gemm(x, .n, w, .t, into: &y) }
        return 2 * Double(n * config.hiddenSize * config.intermediateSize) / timing.median / 1e9
    }
}

/// Wraps a method to time its allocation step (AdaLoRA's share of the step time).
package final class TimedMethod: AdaptationMethod {
    package let wrapped: any AdaptationMethod
    private(set) var seconds: [Double] = []

    package init(_ wrapped: any AdaptationMethod) { self.wrapped = wrapped }

    package func addRegularizer() -> Float { wrapped.addRegularizer() }
    package var ranks: [String: Int] { wrapped.ranks }
    package var state: [String: Matrix] { wrapped.state }
    package func restore(state: [String: Matrix]) throws { try wrapped.restore(state: state) }

    package func afterOptimizerStep(_ step: Int, optimizer: AdamW) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        try wrapped.afterOptimizerStep(step, optimizer: optimizer)
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}

/// The PyTorch + peft reference step (Benchmarks/peft_reference.py), run in its own process.
public struct PeftReference {
    public struct Result: Decodable, Sendable {
        public var implementation: String
        public var variant: String
        public var median_seconds: Double
        public var peak_rss_mib: Double
    }

    public var python: String
    public var script: String

    /// The reference environment made by Benchmarks/setup_reference_env.sh, if present.
    public static func locate(projectRoot: String) -> PeftReference? {
        let python = "\(projectRoot)/.venv-reference/bin/python"
        let script = "\(projectRoot)/Benchmarks/peft_reference.py"
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else { return nil }
        return PeftReference(python: python, script: script)
    }

    public func run(_ variant: String, modelDirectory: String, benchmark: ModelBenchmark, threads: Int) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--model-dir", modelDirectory, "--variant", variant,
                             "--batch", "\(benchmark.batch)", "--sequence", "\(benchmark.sequence)", "--rank", "\(benchmark.rank)",
                             "--threads", "\(threads)", "--warmup", "\(benchmark.warmup)", "--repeats", "\(benchmark.repeats)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = data.split(separator: UInt8(ascii: "\n")).last else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(script) --variant \(variant) exited with status \(process.terminationStatus)"])
        }
        return try JSONDecoder().decode(Result.self, from: Data(line))
    }
}
