import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// The synthetic task in the registry (`task: synthetic`).
public enum SyntheticTaskDefinition: TaskDefinition {
    public static let name = "synthetic"

    public static func settings(_ node: ManifestNode, model: String?) throws -> any TaskSettings { try SyntheticTaskSettings(node) }
}

/// The built-in teacher–student task: a frozen random tanh MLP (the base) and a teacher equal to
/// the base plus, on each module, a ΔW of known rank (`true_rank`). Targets are the teacher's
/// outputs plus Gaussian noise. A student adapter of rank below the true rank cannot represent
/// ΔW and underfits; at or above it, the eval loss can reach the noise floor `noise²`.
public struct SyntheticTaskSettings: TaskSettings {
    public static let keys = ["name", "seed", "input_dim", "hidden_dim", "layers", "output_dim", "true_rank",
                              "delta_scale", "noise", "train_size", "eval_size", "validation_examples"]

    /// Seeds the base, the teacher and the data, so every run of a sweep sees the same problem.
    public var seed: UInt64 = 0
    public var inputDim = 128
    public var hiddenDim = 128
    /// Linear layers fc1 … fcL, with tanh between them.
    public var layers = 2
    public var outputDim = 128
    /// The rank of the teacher's ΔW on each module (0: the teacher leaves it unchanged).
    public var trueRank: [String: Int] = [:]
    /// ‖ΔW‖_F / ‖W0‖_F on every changed module.
    public var deltaScale = 0.5
    /// The standard deviation of the noise added to every target.
    public var noise = 0.05
    public var trainSize = 2048
    public var evalSize = 512
    /// The last this many training examples are held out as the `validation` split (nil: none).
    public var validationExamples: Int?

    public let name = "synthetic"
    public let models = ["synthetic"]
    public let evalMetrics = [EvalMetric(name: "loss", higherIsBetter: false), EvalMetric(name: "r2", higherIsBetter: true)]
    public let hasHead = false

    /// Every default: a rank-8 teacher on both modules.
    public init() {
        trueRank = Self.defaultTrueRank(modules)
    }

    private static func defaultTrueRank(_ modules: [ModuleShape]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: modules.map { ($0.name, min(8, $0.maxRank)) })
    }

    /// `task: synthetic` (all defaults) or a mapping of the keys above.
    package init(_ node: ManifestNode) throws {
        self.init()
        guard case .mapping = node.node else { return }
        let block = try node.mapping(keys: Self.keys)
        if let value = block.optional("seed") { seed = UInt64(try value.int(allowed: "an integer ≥ 0", in: 0...Int.max)) }
        if let value = block.optional("input_dim") { inputDim = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("hidden_dim") { hiddenDim = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("layers") { layers = try value.int(allowed: "an integer ≥ 1 (linear layers)", in: 1...Int.max) }
        if let value = block.optional("output_dim") { outputDim = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("delta_scale") {
            deltaScale = try value.number(allowed: "a number > 0 (‖ΔW‖_F / ‖W0‖_F)", where: { $0 > 0 })
        }
        if let value = block.optional("noise") { noise = try value.number(allowed: "a number ≥ 0", where: { $0 >= 0 }) }
        if let value = block.optional("train_size") { trainSize = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("eval_size") { evalSize = try value.int(allowed: "an integer ≥ 2", in: 2...Int.max) }
        if let value = block.optional("validation_examples") {
            guard trainSize >= 3 else {
                throw value.error(allowed: "no validation_examples: train_size \(trainSize) cannot hold 2 examples out and still train")
            }
            let allowed = "an integer from 2 to train_size − 1 (\(trainSize - 1)): the last examples of the training set, held out"
            validationExamples = try value.int(allowed: allowed, in: 2...(trainSize - 1))
        }
        trueRank = try Self.parseTrueRank(block.optional("true_rank"), modules: modules)
    }

    /// A number (every module) or a mapping from module name to rank (unlisted modules: 0).
    private static func parseTrueRank(_ node: ManifestNode?, modules: [ModuleShape]) throws -> [String: Int] {
        func rank(_ node: ManifestNode, for module: ModuleShape) throws -> Int {
            try node.int(allowed: "an integer from 0 to \(module.maxRank) (\(module.name) is \(module.outFeatures)x\(module.inFeatures))",
                         in: 0...module.maxRank)
        }
        guard let node else { return defaultTrueRank(modules) }
        guard case .mapping = node.node else {
            let smallest = modules.min { $0.maxRank < $1.maxRank }!
            let value = try rank(node, for: smallest)
            return Dictionary(uniqueKeysWithValues: modules.map { ($0.name, value) })
        }
        let block = try node.mapping(keys: modules.map(\.name))
        var ranks = Dictionary(uniqueKeysWithValues: modules.map { ($0.name, 0) })
        for module in modules {
            if let value = block.optional(module.name) { ranks[module.name] = try rank(value, for: module) }
        }
        return ranks
    }

    public var modules: [ModuleShape] {
        (1...layers).map { index in
            ModuleShape(name: "fc\(index)", inFeatures: index == 1 ? inputDim : hiddenDim,
                        outFeatures: index == layers ? outputDim : hiddenDim)
        }
    }

    public var resolved: Node {
        Settings.map([
            ("name", Settings.text(name)),
            ("seed", Settings.int(Int(seed))),
            ("input_dim", Settings.int(inputDim)),
            ("hidden_dim", Settings.int(hiddenDim)),
            ("layers", Settings.int(layers)),
            ("output_dim", Settings.int(outputDim)),
            ("true_rank", Settings.map(modules.map { ($0.name, Settings.int(trueRank[$0.name] ?? 0)) })),
            ("delta_scale", Settings.number(deltaScale)),
            ("noise", Settings.number(noise)),
            ("train_size", Settings.int(trainSize)),
            ("eval_size", Settings.int(evalSize)),
        ] + (validationExamples.map { [("validation_examples", Settings.int($0))] } ?? []))
    }

    public func makeTask() throws -> any ExperimentTask { try SyntheticTask(settings: self) }
}

/// The generated problem: base weights, teacher targets, train and eval sets.
package final class SyntheticTask: ExperimentTask {
    package let settings: SyntheticTaskSettings
    /// W0 [out, in] and b [1, out] per module, in model order.
    package let baseWeights: [(weight: Matrix, bias: Matrix)]
    package let trainInputs: Matrix   // [train_size − validation_examples, input_dim]
    package let trainTargets: Matrix  // [train_size − validation_examples, output_dim]
    /// Each held-out split: inputs [n, input_dim], targets [n, output_dim], and
    /// Σ (t − mean_column(t))² over its targets, R²'s denominator.
    package let heldOut: [EvalSplit: (inputs: Matrix, targets: Matrix, totalSquares: Double)]

    package init(settings: SyntheticTaskSettings) throws {
        self.settings = settings
        let root = SplitMix64(seed: settings.seed)
        var base: [(Matrix, Matrix)] = []
        var teacher: [(Matrix, Matrix)] = []
        for module in settings.modules {
            var rng = root.derived("base/\(module.name)")
            // N(0, 1/in) keeps each layer's pre-activations at unit scale for unit-scale inputs.
            let weight = Matrix.gaussian(module.outFeatures, module.inFeatures, std: 1 / Float(module.inFeatures).squareRoot(), using: &rng)
            let bias = Matrix.gaussian(1, module.outFeatures, std: 0.1, using: &rng)
            base.append((weight, bias))
            var changed = weight
            let k = settings.trueRank[module.name] ?? 0
            if k > 0 {
                var deltaRNG = root.derived("teacher/\(module.name)")
                let p = Matrix.gaussian(module.outFeatures, k, std: 1, using: &deltaRNG)
                let q = Matrix.gaussian(k, module.inFeatures, std: 1, using: &deltaRNG)
                let delta = matmul(p, .n, q, .n)
                axpy(Float(settings.deltaScale) * frobeniusNorm(weight) / frobeniusNorm(delta), delta, &changed)
            }
            teacher.append((changed, bias))
        }
        baseWeights = base

        func sample(_ split: String, count: Int) throws -> (Matrix, Matrix) {
            var inputRNG = root.derived("\(split)/inputs")
            var noiseRNG = root.derived("\(split)/noise")
            let x = Matrix.gaussian(count, settings.inputDim, std: 1, using: &inputRNG)
            var t = try Self.network(teacher, modules: settings.modules).forward(x, training: false)
            axpy(1, .gaussian(t.rows, t.cols, std: Float(settings.noise), using: &noiseRNG), &t)
            return (x, t)
        }
        let (inputs, targets) = try sample("train", count: settings.trainSize)
        let (evalInputs, evalTargets) = try sample("eval", count: settings.evalSize)
        var heldOut = [EvalSplit.eval: (evalInputs, evalTargets, Self.totalSquares(evalTargets))]
        if let validation = settings.validationExamples {
            // The examples are i.i.d., so the last ones are as good a sample as any.
            let kept = Array(0..<(settings.trainSize - validation)), held = Array((settings.trainSize - validation)..<settings.trainSize)
            trainInputs = inputs.selectingRows(kept)
            trainTargets = targets.selectingRows(kept)
            let validationTargets = targets.selectingRows(held)
            heldOut[.validation] = (inputs.selectingRows(held), validationTargets, Self.totalSquares(validationTargets))
        } else {
            (trainInputs, trainTargets) = (inputs, targets)
        }
        self.heldOut = heldOut
    }

    /// An MLP of frozen layers with the given weights.
    private static func network(_ weights: [(Matrix, Matrix)], modules: [ModuleShape]) throws -> AdaptedMLP {
        AdaptedMLP(layers: try zip(modules, weights).map { module, weight in
            NamedAdapter(name: module.name, adapter: FrozenLayer(base: try FrozenLinear(weight: weight.0, bias: weight.1)))
        })
    }

    private static func totalSquares(_ t: Matrix) -> Double {
        var total = 0.0
        for c in 0..<t.cols {
            var mean = 0.0
            for r in 0..<t.rows { mean += Double(t[r, c]) }
            mean /= Double(t.rows)
            for r in 0..<t.rows { total += (Double(t[r, c]) - mean) * (Double(t[r, c]) - mean) }
        }
        return total
    }

    package func makeModel(seed: UInt64, batchSize: Int, base format: BaseWeightFormat, adapt: AdapterFactory) throws -> any TaskModel {
        var layers: [NamedAdapter] = []
        var adapted: [NamedAdapter] = []
        let buffer = DequantizationBuffer()
        for (module, weights) in zip(settings.modules, baseWeights) {
            // A fresh base per run: PiSSA replaces it with its residual, merging edits it.
            let base = try format.frozenLinear(weight: weights.weight, bias: weights.bias, buffer: buffer)
            if let adapter = try adapt(module, base) {
                layers.append(NamedAdapter(name: module.name, adapter: adapter))
                adapted.append(layers.last!)
            } else {
                layers.append(NamedAdapter(name: module.name, adapter: FrozenLayer(base: base)))
            }
        }
        return SyntheticModel(task: self, network: AdaptedMLP(layers: layers), adapters: adapted,
                              batchSize: batchSize, rng: SplitMix64(seed: seed).derived("batches"))
    }
}

/// One run's student: the base MLP with the run's adapters, trained on shuffled mini-batches.
package final class SyntheticModel: TaskModel {
    package let task: SyntheticTask
    package let network: AdaptedMLP
    package let adapters: [NamedAdapter]
    package let batchSize: Int
    private var rng: SplitMix64
    private var order: [Int] = []
    private var cursor = 0

    package init(task: SyntheticTask, network: AdaptedMLP, adapters: [NamedAdapter], batchSize: Int, rng: SplitMix64) {
        self.task = task
        self.network = network
        self.adapters = adapters
        self.batchSize = min(batchSize, task.trainInputs.rows)
        self.rng = rng
    }

    package var trainableParameters: [Parameter] { network.parameters }

    package var parameterReport: ParameterReport { ParameterReport(layers: network.layers.map(\.adapter)) }

    package func trainOnNextBatch() throws -> Float {
        let rows = nextBatch()
        let y = try network.forward(task.trainInputs.selectingRows(rows), training: true)
        let (loss, gradient) = meanSquaredError(y, task.trainTargets.selectingRows(rows))
        try network.backward(gradient)
        lastBatchTokenCount = rows.count
        return loss
    }

    package private(set) var lastBatchTokenCount = 0

    /// Epochs of a Fisher–Yates shuffle; the last partial batch of an epoch is dropped so every
    /// step sees `batchSize` rows.
    private func nextBatch() -> [Int] {
        if cursor + batchSize > order.count {
            order = Array(0..<task.trainInputs.rows)
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
            cursor = 0
        }
        defer { cursor += batchSize }
        return Array(order[cursor..<(cursor + batchSize)])
    }

    /// [shuffle generator state, cursor] followed by the current epoch's order.
    package var dataPosition: [UInt64] { [rng.state, UInt64(cursor)] + order.map(UInt64.init) }

    package func restore(dataPosition position: [UInt64]) throws {
        let order = position.dropFirst(2).map(Int.init)
        let rows = task.trainInputs.rows
        guard position.count >= 2, order.isEmpty || Set(order) == Set(0..<rows), Int(position[1]) <= order.count else {
            throw DataPositionError(found: position, expected: "[generator, cursor] + a permutation of 0..<\(rows)")
        }
        (rng, cursor, self.order) = (SplitMix64(seed: position[0]), Int(position[1]), order)
    }

    /// MSE and R² = 1 − SSE/SST on a held-out split, summed in Double so the numbers do not
    /// depend on how BLAS splits a reduction. A regression task has no predictions to save.
    package func evaluate(_ split: EvalSplit) throws -> Evaluation {
        guard let set = task.heldOut[split] else { throw HeldOutSplitError(split: split) }
        let y = try network.forward(set.inputs, training: false)
        var squaredError = 0.0
        for i in 0..<y.count {
            let d = Double(y.storage[i]) - Double(set.targets.storage[i])
            squaredError += d * d
        }
        return Evaluation(metrics: ["loss": squaredError / Double(y.count), "r2": 1 - squaredError / set.totalSquares])
    }
}
