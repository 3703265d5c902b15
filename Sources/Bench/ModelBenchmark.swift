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

/// The architecture of a model family as the bench trains it, known from the family's protocol
/// (never its name): a BERT encoder fine-tuned as a classifier (mean pooling, a linear head,
/// cross-entropy over two labels) or a Llama decoder fine-tuned as a causal LM (the tied head,
/// cross-entropy over next tokens).
public enum BenchArchitecture: Sendable {
    case encoder(BertConfig)
    case decoder(LlamaConfig)

    public init(_ family: any ModelFamily) throws {
        if let family = family as? any BertFamily {
            self = .encoder(family.architecture)
        } else if let family = family as? any LlamaFamily {
            self = .decoder(family.architecture)
        } else {
            throw BenchError.unsupportedModel(family.name)
        }
    }

    /// peft's names of every Linear of a layer: what `target_modules` lists to adapt them all.
    public var allLinearTargets: [String] {
        switch self {
        case .encoder: return BertEncoder.allLinearTargets
        case .decoder: return LlamaConfig.linearNames.map { String($0.split(separator: ".").last!) }
        }
    }

    /// The bench's defaults: a batch as the architecture's users fine-tune it (GLUE's short
    /// sentences in large batches; a decoder's longer sequences in smaller ones), and the variants
    /// a run compares (a decoder step takes seconds, so LoRA alone).
    public var defaultBatch: Int { if case .encoder = self { 32 } else { 8 } }
    public var defaultSequence: Int { if case .encoder = self { 64 } else { 128 } }
    public var defaultVariants: [String] { if case .encoder = self { ["lora", "dora", "adalora"] } else { ["lora"] } }

    /// Every adaptable Linear under its peft module name, in model order.
    var modules: [ModuleShape] {
        switch self {
        case let .encoder(config): return BertEncoder.modules(of: config)
        case let .decoder(config): return config.modules
        }
    }

    /// The widest frozen product's shape, (in, out): the sgemm whose throughput sets the floor.
    var largestLinear: (inFeatures: Int, outFeatures: Int) {
        switch self {
        case let .encoder(config): return (config.hiddenSize, config.intermediateSize)
        case let .decoder(config): return (config.hiddenSize, config.intermediateSize)
        }
    }
}

/// Which positions a decoder's causal-LM loss covers: every next token (pre-training style, and
/// a completion task's long answers), or the last one only (a classifier's answer token).
public enum LossPositions: String, Sendable, CaseIterable {
    case all, last
}

/// One training step of a real model (forward + backward + AdamW, and AdaLoRA's allocation) at
/// a fixed batch, against this machine's sgemm throughput: issue 5's benchmark, and issue 27's
/// for a decoder.
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
        /// What the frozen Linears keep (weights and biases, NF4 with its scales on a QLoRA base).
        public var frozenLinearMiB: Double
    }

    public var architecture: BenchArchitecture
    public var batch: Int
    public var sequence: Int
    public var rank: Int
    public var warmup: Int
    public var repeats: Int
    /// peft's `target_modules`: the Linears that get an adapter, in every layer.
    public var targetModules: [String]
    /// A decoder's loss positions (an encoder's loss is over its labels).
    public var lossPositions: LossPositions

    public init(architecture: BenchArchitecture, batch: Int? = nil, sequence: Int? = nil, rank: Int = 8, warmup: Int = 2,
                repeats: Int = 5, targetModules: [String]? = nil, lossPositions: LossPositions = .all) {
        self.architecture = architecture
        self.batch = batch ?? architecture.defaultBatch
        self.sequence = sequence ?? architecture.defaultSequence
        self.rank = rank
        self.warmup = warmup
        self.repeats = repeats
        self.targetModules = targetModules ?? architecture.allLinearTargets
        self.lossPositions = lossPositions
    }

    /// The adapted Linears' shapes.
    var adaptedModules: [ModuleShape] {
        architecture.modules.filter { BertEncoder.matches($0.name, targetModules: targetModules) }
    }

    /// FLOPs of one encoder step. Per layer, forward: six frozen linears 2·N·C·(4C + 2F) (Q, K, V, O and
    /// the two feed-forward ones; F = intermediate size) and attention 4·N·T·C; backward: ∂x of
    /// every linear (the same again; the frozen weights need no ∂W) and 8·N·T·C for attention.
    /// Each rank-r adapter adds 4·N·r·(in + out) over forward and backward.
    public static func flops(config: BertConfig, batch: Int, sequence: Int, rank: Int, adapted: [(inFeatures: Int, outFeatures: Int)]) -> Double {
        let n = Double(batch * sequence), c = Double(config.hiddenSize), f = Double(config.intermediateSize), t = Double(sequence)
        let linear = 2 * n * c * (4 * c + 2 * f)
        let perLayer = 2 * linear + 12 * n * t * c
        return Double(config.layerCount) * perLayer + adapterFLOPs(n: n, rank: rank, adapted: adapted)
    }

    /// FLOPs of one decoder step with a loss over `lossRows` positions. Per layer, forward: seven
    /// frozen linears 2·N·C·(2C + 2KV + 3F) (Q and O C wide, K and V KV wide, gate, up and down F)
    /// and attention 4·N·T·C over whole T×T blocks; backward: ∂x of every linear but the first
    /// layer's Q, K and V (nothing below them trains) and 8·N·T·C for attention. The tied head
    /// takes 2·R·C·V forward and again for ∂h. Adapters as in the encoder's count.
    public static func flops(config: LlamaConfig, batch: Int, sequence: Int, rank: Int, lossRows: Int,
                             adapted: [(inFeatures: Int, outFeatures: Int)]) -> Double {
        let n = Double(batch * sequence), c = Double(config.hiddenSize), f = Double(config.intermediateSize)
        let kv = Double(config.keyValueWidth), t = Double(sequence)
        let linear = 2 * n * c * (2 * c + 2 * kv + 3 * f)
        let perLayer = 2 * linear + 12 * n * t * c
        let firstInputGradient = 2 * n * c * (c + 2 * kv)
        let head = 4 * Double(lossRows) * c * Double(config.vocabSize)
        return Double(config.layerCount) * perLayer - firstInputGradient + head + adapterFLOPs(n: n, rank: rank, adapted: adapted)
    }

    private static func adapterFLOPs(n: Double, rank: Int, adapted: [(inFeatures: Int, outFeatures: Int)]) -> Double {
        adapted.reduce(0.0) { $0 + 4 * n * Double(rank) * Double($1.inFeatures + $1.outFeatures) }
    }

    /// The positions a decoder step's loss covers: each sequence's T − 1 next tokens, or its last.
    var lossRows: Int { lossPositions == .all ? batch * (sequence - 1) : batch }

    /// FLOPs of one step with rank-r adapters on the targeted Linears.
    public var stepFLOPs: Double {
        let adapted = adaptedModules.map { ($0.inFeatures, $0.outFeatures) }
        switch architecture {
        case let .encoder(config): return Self.flops(config: config, batch: batch, sequence: sequence, rank: rank, adapted: adapted)
        case let .decoder(config):
            return Self.flops(config: config, batch: batch, sequence: sequence, rank: rank, lossRows: lossRows, adapted: adapted)
        }
    }

    /// Times the variant called `variant` (a registry name, at its default settings, as a manifest's
    /// `- <name>` gets it) with rank-r adapters (α = 2r) on the targeted Linears.
    public func run(_ variant: String, files: ModelFiles, base: BaseWeightFormat = .float32) throws -> Row {
        let session = try StepSession(variant, benchmark: self, model: try ModelSource(files), base: base)
        let timing = try Timing.measure(warmup: warmup, repeats: repeats, session.step)
        let allocation = Timing(seconds: Array(session.method.seconds.suffix(repeats))).median
        return Row(variant: variant, timing: timing, allocationSeconds: allocation, flops: stepFLOPs,
                   peakResidentMiB: Self.peakResidentMiB(), trainableParameters: session.model.trainableParameters.reduce(0) { $0 + $1.count },
                   frozenLinearMiB: Double(session.model.frozenLinearBytes) / 1_048_576)
    }

    /// Steps of several variants interleaved in one process, one step each in turn (A, B, C, A, B,
    /// C, …): `seconds[v][i]` is variant v's step in cycle i. Steps of one cycle are under a second
    /// apart, so the ratio of two variants' steps in a cycle is far less moved by the machine's
    /// drift than the ratio of two children timed seconds apart.
    public func interleaved(_ variants: [String], files: ModelFiles, base: BaseWeightFormat = .float32) throws -> [[Double]] {
        let source = try ModelSource(files)
        let sessions = try variants.map { try StepSession($0, benchmark: self, model: source, base: base) }
        for _ in 0..<warmup { for session in sessions { try session.step() } }
        var seconds = [[Double]](repeating: [], count: sessions.count)
        for _ in 0..<repeats {
            for (index, session) in sessions.enumerated() {
                seconds[index] += try Timing.measure(warmup: 0, repeats: 1, session.step).seconds
            }
        }
        return seconds
    }

    /// The process's peak resident set size so far (getrusage ru_maxrss, in KiB on Linux).
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// sgemm throughput at the model's largest linear shape, [N, in]·[out, in]ᵀ.
    public func sgemmGFLOPS() -> Double {
        var rng = SplitMix64(seed: 1)
        let n = batch * sequence, (inFeatures, outFeatures) = architecture.largestLinear
        let x = Matrix.gaussian(n, inFeatures, std: 1, using: &rng)
        let w = Matrix.gaussian(outFeatures, inFeatures, std: 1, using: &rng)
        var y = Matrix.zeros(n, outFeatures)
        let timing = Timing.measure(warmup: 3, repeats: 15) { gemm(x, .n, w, .t, into: &y) }
        return 2 * Double(n * inFeatures * outFeatures) / timing.median / 1e9
    }
}

/// A fetched model's files, with a decoder's weights dequantized once for every session built
/// from them (the sessions of an interleaved child share one copy, as a sweep's runs do).
struct ModelSource {
    let files: ModelFiles
    let architecture: BenchArchitecture
    let decoderWeights: LlamaWeights?

    init(_ files: ModelFiles) throws {
        self.files = files
        architecture = try BenchArchitecture(files.family)
        if case .decoder = architecture {
            let file = try GGUFFile(path: files.weightsPath)
            decoderWeights = try LlamaWeights(gguf: file, config: LlamaConfig(gguf: file))
        } else {
            decoderWeights = nil
        }
    }
}

/// What a step needs of a model: its loss and backward on the bench's fixed batch.
protocol BenchedModel: AnyObject {
    var adapters: [NamedAdapter] { get }
    var trainableParameters: [Parameter] { get }
    /// What the frozen Linears keep (float32, or NF4 with its scales).
    var frozenLinearBytes: Int { get }
    /// Forward to the loss, then backward into every trainable parameter's gradient.
    func lossAndBackward() throws -> Float
}

/// The encoder as a two-label classifier on random token ids.
final class EncoderClassifier: BenchedModel {
    let encoder: BertEncoder
    private let ids: [Int], mask: [Int], labels: [Int]
    private let batch: Int

    init(files: ModelFiles, plan: any AdapterPlan, benchmark: ModelBenchmark, base: BaseWeightFormat) throws {
        encoder = try BertEncoder(files: files, labelCount: 2, seed: 0, plan: plan, targetModules: benchmark.targetModules, baseFormat: base)
        batch = benchmark.batch
        var rng = SplitMix64(seed: 0)
        ids = (0..<(benchmark.batch * benchmark.sequence)).map { _ in 1000 + Int(rng.next() % 29000) }
        mask = [Int](repeating: 1, count: benchmark.batch * benchmark.sequence)
        labels = (0..<benchmark.batch).map { _ in Int(rng.next() % 2) }
    }

    var adapters: [NamedAdapter] { encoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) } }
    var trainableParameters: [Parameter] { encoder.trainableParameters }
    var frozenLinearBytes: Int { encoder.frozenLinearBytes }

    func lossAndBackward() throws -> Float {
        let loss = try encoder.loss(inputIDs: ids, attentionMask: mask, batchSize: batch, labels: labels).loss
        try encoder.backward()
        return loss
    }
}

/// The decoder as a causal LM on random token ids, its loss over every next token or the last.
final class DecoderLanguageModel: BenchedModel {
    let decoder: LlamaDecoder
    let frozenLinearBytes: Int
    private let ids: [Int], mask: [Int], labels: [Int]
    private let batch: Int

    init(weights: LlamaWeights, plan: any AdapterPlan, benchmark: ModelBenchmark, base: BaseWeightFormat) throws {
        let builder = try plan.layerBuilder(for: benchmark.adaptedModules)
        var frozenBytes = 0
        decoder = try LlamaDecoder(weights: weights, baseFormat: base) { module, frozen in
            frozenBytes += frozen.residentBytes
            guard let builder, BertEncoder.matches(module.name, targetModules: benchmark.targetModules) else { return nil }
            var rng = SplitMix64(seed: 0).derived("adapter/\(module.name)")
            return try builder.adapter(for: module, base: frozen, seed: rng.next())
        }
        frozenLinearBytes = frozenBytes
        batch = benchmark.batch
        let count = benchmark.batch * benchmark.sequence, length = benchmark.sequence
        var rng = SplitMix64(seed: 0)
        let ids = (0..<count).map { _ in 1000 + Int(rng.next() % 29000) }
        self.ids = ids
        mask = [Int](repeating: 1, count: count)
        switch benchmark.lossPositions {
        case .all: labels = ids
        case .last: labels = (0..<count).map { $0 % length == length - 1 ? ids[$0] : LlamaDecoder.ignoredLabel }
        }
    }

    var adapters: [NamedAdapter] { decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) } }
    var trainableParameters: [Parameter] { decoder.adapters.flatMap { $0.adapter.parameters } }

    func lossAndBackward() throws -> Float {
        let loss = try decoder.loss(inputIDs: ids, attentionMask: mask, labels: labels, batchSize: batch)
        try decoder.backward()
        return loss
    }
}

/// One variant's model, method and optimizer on the benchmark's fixed batch, ready to step.
final class StepSession {
    let model: any BenchedModel
    let method: TimedMethod
    private let optimizer: AdamW
    private var stepIndex = 0

    init(_ variant: String, benchmark: ModelBenchmark, model source: ModelSource, base: BaseWeightFormat) throws {
        let plan = try VariantRegistry.plan(named: variant, for: RunShape(rank: benchmark.rank, alpha: Double(2 * benchmark.rank),
                                                                           steps: benchmark.warmup + benchmark.repeats + 1,
                                                                           targetModules: benchmark.targetModules))
        if let weights = source.decoderWeights {
            model = try DecoderLanguageModel(weights: weights, plan: plan, benchmark: benchmark, base: base)
        } else {
            model = try EncoderClassifier(files: source.files, plan: plan, benchmark: benchmark, base: base)
        }
        method = TimedMethod(try plan.makeMethod(layers: model.adapters))
        optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: model.trainableParameters, learningRate: 1e-4)])
    }

    /// One training step: forward to the loss, backward, AdamW and the method's own step.
    func step() throws {
        _ = try trainingStep(stepIndex, optimizer: optimizer, method: method, lossAndGradients: model.lossAndBackward)
        stepIndex += 1
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

/// One implementation's measurement of one variant's step, as a child process prints it (JSON):
/// each bench child runs one variant, so that its peak resident memory is that variant's own.
public struct StepMeasurement: Codable, Sendable {
    /// `LoRABench`, or PyTorch's version with peft.
    public var implementation: String
    /// The attention PyTorch ran (`sdpa`, `eager`); nil for LoRABench.
    public var attention: String?
    public var variant: String
    public var seconds: [Double]
    public var peakResidentMiB: Double
    /// LoRABench's frozen Linears' resident size; nil for PyTorch.
    public var frozenLinearMiB: Double?

    enum CodingKeys: String, CodingKey {
        case implementation, attention, variant, seconds, peakResidentMiB = "peak_rss_mib", frozenLinearMiB = "frozen_linear_mib"
    }

    public init(implementation: String, attention: String?, variant: String, seconds: [Double], peakResidentMiB: Double,
                frozenLinearMiB: Double? = nil) {
        self.implementation = implementation
        self.attention = attention
        self.variant = variant
        self.seconds = seconds
        self.peakResidentMiB = peakResidentMiB
        self.frozenLinearMiB = frozenLinearMiB
    }

    public var median: Double { Timing(seconds: seconds).median }
}

/// Our variants' steps interleaved in one child process (`ModelBenchmark.interleaved`), as it
/// prints them (JSON): `seconds[v][i]` is `variants[v]`'s step in cycle i.
public struct InterleavedMeasurement: Codable, Sendable {
    public var variants: [String]
    public var seconds: [[Double]]

    public init(variants: [String], seconds: [[Double]]) {
        self.variants = variants
        self.seconds = seconds
    }
}

/// A bench child: this executable (`lorabench bench model --child …`) or the PyTorch + peft
/// reference (Benchmarks/peft_reference.py), run as its own process, printing a `StepMeasurement`.
public struct BenchChild: Sendable {
    /// The row label: `LoRABench`, `PyTorch+peft (sdpa)`, `PyTorch+peft (eager)`.
    public var label: String
    public var executable: String
    /// The arguments before `--variant V`.
    public var arguments: [String]

    public init(label: String, executable: String, arguments: [String]) {
        self.label = label
        self.executable = executable
        self.arguments = arguments
    }

    /// The PyTorch + peft children (default attention, then eager when asked) when the reference
    /// environment made by Benchmarks/setup_reference_env.sh exists: Benchmarks/peft_reference.py
    /// for an encoder, Benchmarks/peft_decoder_reference.py (transformers loading the same GGUF
    /// file) for a decoder, on the benchmark's shapes and `threads` threads.
    public static func references(projectRoot: String, files: ModelFiles, benchmark: ModelBenchmark, threads: Int,
                                  eager: Bool) -> [BenchChild] {
        let python = "\(projectRoot)/.venv-reference/bin/python"
        let model: [String], script: String
        switch benchmark.architecture {
        case .encoder:
            script = "\(projectRoot)/Benchmarks/peft_reference.py"
            model = ["--model-dir", files.directory]
        case .decoder:
            script = "\(projectRoot)/Benchmarks/peft_decoder_reference.py"
            model = ["--model-dir", files.directory, "--gguf-file", files.family.weightsFileName,
                     "--loss-positions", benchmark.lossPositions.rawValue, "--target-modules", benchmark.targetModules.joined(separator: ",")]
        }
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else { return [] }
        let common = [script] + model + ["--batch", "\(benchmark.batch)", "--sequence", "\(benchmark.sequence)",
                                         "--rank", "\(benchmark.rank)", "--threads", "\(threads)", "--warmup", "\(benchmark.warmup)",
                                         "--repeats", "\(benchmark.repeats)"]
        return [BenchChild(label: "PyTorch+peft (default: sdpa)", executable: python, arguments: common + ["--attention", "default"])]
            + (eager ? [BenchChild(label: "PyTorch+peft (eager)", executable: python, arguments: common + ["--attention", "eager"])] : [])
    }

    public func measure(_ variant: String) throws -> StepMeasurement {
        try run(["--variant", variant])
    }

    /// Our variants' steps interleaved in this one child (`--interleave V` for each).
    public func measureInterleaved(_ variants: [String]) throws -> InterleavedMeasurement {
        try run(variants.flatMap { ["--interleave", $0] })
    }

    /// The measurement is the last line of the child's standard output; a child that fails is
    /// reported with the tail of its standard error.
    func run<Measurement: Decodable>(_ extraArguments: [String]) throws -> Measurement {
        let result = try ChildProcess.run(executable, arguments + extraArguments).check()
        guard let line = result.output.split(whereSeparator: \.isNewline).last,
              let measurement = try? JSONDecoder().decode(Measurement.self, from: Data(line.utf8)) else {
            throw BenchError.noMeasurement(command: result.command)
        }
        return measurement
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case noMeasurement(command: String)
    case unsupportedModel(String)
    /// A command-line value out of range, with what is allowed.
    case invalidOption(String, value: String, allowed: String)

    public var description: String {
        switch self {
        case let .noMeasurement(command): return "bench child `\(command)` exited with status 0 but printed no measurement"
        case let .invalidOption(option, value, allowed): return "\(option) \(value) is not allowed; allowed: \(allowed)"
        case let .unsupportedModel(name): return "model '\(name)' is neither a BERT encoder nor a Llama decoder: the model bench cannot train it"
        }
    }
}

/// Ours against the references on a noisy shared machine: rounds in which every child runs once
/// per variant, one after the other (A, B, A, B, …), so that drift in the machine's speed hits
/// every implementation alike. Each round gives each child's median step; the table gives the
/// median over rounds with its interquartile range, and the per-round ratio to ours, likewise.
public struct AlternatingComparison {
    public struct Cell: Sendable {
        public var label: String
        public var variant: String
        /// Each round's median step time.
        public var roundMedians: [Double]
        public var peakResidentMiB: Double
        /// This child's time over ours, per round (1 for ours).
        public var ratios: [Double]
        /// The frozen Linears' resident size (LoRABench children only).
        public var frozenLinearMiB: Double?
    }

    public var children: [BenchChild]
    public var rounds: Int
    /// Whether each round also runs ours once more with all variants' steps interleaved in one
    /// process (`InterleavedMeasurement`), for the variants' ratios.
    public var interleaves: Bool

    public init(children: [BenchChild], rounds: Int, interleaves: Bool = false) {
        self.children = children
        self.rounds = rounds
        self.interleaves = interleaves
    }

    /// `children[0]` is ours; `sgemm` is measured before each round (the floor moves with the
    /// machine). `interleaved` holds the interleaved children's measurements, one per round.
    public func run(variants: [String], sgemm: () -> Double) throws
        -> (cells: [Cell], sgemmGFLOPS: [Double], interleaved: [InterleavedMeasurement]) {
        var times = [String: [Double]](), memory = [String: Double](), frozen = [String: Double]()
        var throughput: [Double] = []
        var interleaved: [InterleavedMeasurement] = []
        for _ in 0..<rounds {
            throughput.append(sgemm())
            for variant in variants {
                for child in children {
                    let measurement = try child.measure(variant)
                    times["\(child.label)|\(variant)", default: []].append(measurement.median)
                    memory["\(child.label)|\(variant)"] = max(memory["\(child.label)|\(variant)"] ?? 0, measurement.peakResidentMiB)
                    frozen["\(child.label)|\(variant)"] = measurement.frozenLinearMiB
                }
            }
            if interleaves, variants.count > 1 { interleaved.append(try children[0].measureInterleaved(variants)) }
        }
        let cells = variants.flatMap { variant in
            children.map { child in
                let key = "\(child.label)|\(variant)"
                let ours = times["\(children[0].label)|\(variant)"]!
                return Cell(label: child.label, variant: variant, roundMedians: times[key]!, peakResidentMiB: memory[key]!,
                            ratios: zip(times[key]!, ours).map { $0 / $1 }, frozenLinearMiB: frozen[key] ?? nil)
            }
        }
        return (cells, throughput, interleaved)
    }
}

extension AlternatingComparison {
    /// The comparison table: per variant and implementation, the median step over rounds and its
    /// IQR, the share of the sgemm FLOP floor (per round, step FLOPs / that round's sgemm
    /// throughput / step time, and its median: the machine's speed moves from hour to hour, and a
    /// round pairs the floor with steps timed minutes from it), the ratio to ours (median and IQR
    /// over rounds) and the peak resident memory.
    public static func table(_ cells: [Cell], sgemmGFLOPS: [Double], stepFLOPs: Double) -> String {
        let sgemm = quartiles(sgemmGFLOPS)
        let floor = stepFLOPs / 1e9 / sgemm.median
        var lines = [String(format: "sgemm %.1f GFLOP/s (median of rounds; IQR %.1f–%.1f; OpenBLAS ", sgemm.median, sgemm.q1, sgemm.q3)
            + BLASCore.loaded + " kernels, vector kernels " + VectorKernels.level + String(format: "); GEMM floor %.3f s/step (%.1f GFLOP)", floor, stepFLOPs / 1e9)]
        lines.append("variant   implementation                 s/step  IQR             floor share  time / ours (IQR)       peak MiB  frozen MiB")
        for cell in cells {
            let time = quartiles(cell.roundMedians), ratio = quartiles(cell.ratios)
            let floorShare = quartiles(zip(cell.roundMedians, sgemmGFLOPS).map { stepFLOPs / 1e9 / $1 / $0 }).median
            lines.append(cell.variant.padding(toLength: 8, withPad: " ", startingAt: 0) + "  "
                + cell.label.padding(toLength: 29, withPad: " ", startingAt: 0)
                + String(format: "  %6.3f  %6.3f–%6.3f  %10.0f%%  %5.2fx (%4.2f–%4.2f)  %9.0f", time.median, time.q1, time.q3,
                         100 * floorShare, ratio.median, ratio.q1, ratio.q3, cell.peakResidentMiB)
                + (cell.frozenLinearMiB.map { String(format: "  %10.1f", $0) } ?? ""))
        }
        if let line = variantRatios(cells) { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    /// Ours, each variant's time over the first variant's in the same round (median and IQR over
    /// rounds): the variants alternate within a round, so the machine's drift cancels as it does in
    /// the ratio to PyTorch. Nil with one variant.
    static func variantRatios(_ cells: [Cell]) -> String? {
        guard let ours = cells.first?.label else { return nil }
        let oursByVariant = cells.filter { $0.label == ours }
        guard let first = oursByVariant.first, oursByVariant.count > 1 else { return nil }
        let ratios = oursByVariant.dropFirst().map { cell in
            let ratio = quartiles(zip(cell.roundMedians, first.roundMedians).map { $0 / $1 })
            return cell.variant + String(format: " %.2fx (%.2f–%.2f)", ratio.median, ratio.q1, ratio.q3)
        }
        return "\(ours) per round against \(first.variant): " + ratios.joined(separator: ", ")
    }
}

extension InterleavedMeasurement {
    /// Each variant after the first against the first, per cycle of interleaved steps, pooled over
    /// the measurements (median and IQR). Nil without a second variant or a step.
    public static func ratioLine(_ measurements: [InterleavedMeasurement]) -> String? {
        guard let variants = measurements.first?.variants, variants.count > 1,
              measurements.allSatisfy({ $0.variants == variants }) else { return nil }
        var parts: [String] = []
        var cycles = 0
        for index in 1..<variants.count {
            let ratios = measurements.flatMap { zip($0.seconds[index], $0.seconds[0]).map { $0 / $1 } }
            guard !ratios.isEmpty else { return nil }
            cycles = ratios.count
            let ratio = quartiles(ratios)
            parts.append(variants[index] + String(format: " %.2fx (%.2f–%.2f)", ratio.median, ratio.q1, ratio.q3))
        }
        return "LoRABench with steps interleaved in one process (\(cycles) cycles over \(measurements.count) children), per cycle against "
            + "\(variants[0]): " + parts.joined(separator: ", ")
    }
}

/// The median and the interquartile range (linear interpolation between order statistics, as
/// numpy's default percentile does).
public func quartiles(_ values: [Double]) -> (q1: Double, median: Double, q3: Double) {
    let sorted = values.sorted()
    func quantile(_ p: Double) -> Double {
        guard sorted.count > 1 else { return sorted.first ?? .nan }
        let position = p * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }
    return (quantile(0.25), quantile(0.5), quantile(0.75))
}
