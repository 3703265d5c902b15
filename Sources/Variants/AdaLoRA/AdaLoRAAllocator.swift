import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining

/// AdaLoRA's settings (peft's `AdaLoraConfig`), validated on creation.
public struct AdaLoRASchedule: Sendable, Equatable {
    /// Average final rank per layer; the final budget is targetRank × layers.
    public var targetRank: Int
    /// Warm-up steps at the full budget (t_i).
    public var initialWarmup: Int
    /// Final steps at the target budget with the allocation frozen (t_f).
    public var finalWarmup: Int
    /// Mask every ΔT steps while the budget decreases.
    public var maskInterval: Int
    /// EMA factors for sensitivity (β1) and uncertainty (β2), Eq. 8–9 of the paper.
    public var beta1: Float = 0.85
    public var beta2: Float = 0.85
    /// γ of the orthogonal regulariser.
    public var orthogonalRegularization: Float = 0.5
    /// T: total optimizer steps.
    public var totalSteps: Int

    public init(targetRank: Int, initialWarmup: Int, finalWarmup: Int, maskInterval: Int, beta1: Float = 0.85,
                beta2: Float = 0.85, orthogonalRegularization: Float = 0.5, totalSteps: Int) throws {
        guard totalSteps > 0 else {
            throw AdapterError.invalidSetting(name: "adalora total_step", value: "\(totalSteps)", allowed: "it must be > 0")
        }
        guard initialWarmup < totalSteps - finalWarmup else {
            throw AdapterError.invalidSetting(name: "adalora tinit", value: "\(initialWarmup)",
                                              allowed: "tinit must be < total_step − tfinal = \(totalSteps - finalWarmup)")
        }
        guard maskInterval >= 1 else {
            throw AdapterError.invalidSetting(name: "adalora deltaT", value: "\(maskInterval)", allowed: "it must be ≥ 1")
        }
        guard beta1 > 0, beta1 < 1, beta2 > 0, beta2 < 1 else {
            throw AdapterError.invalidSetting(name: "adalora beta1/beta2", value: "\(beta1)/\(beta2)", allowed: "both must be in (0, 1)")
        }
        self.targetRank = targetRank
        self.initialWarmup = initialWarmup
        self.finalWarmup = finalWarmup
        self.maskInterval = maskInterval
        self.beta1 = beta1
        self.beta2 = beta2
        self.orthogonalRegularization = orthogonalRegularization
        self.totalSteps = totalSteps
    }
}

/// AdaLoRA in peft's mode: the orthogonal regulariser and the global rank budget
/// (`AdaLoraModel` + `RankAllocator`), over every `AdaLoRALayer` of the model.
public final class AdaLoRAAllocator: AdaptationMethod {
    public let layers: [(name: String, layer: AdaLoRALayer)]
    public let schedule: AdaLoRASchedule
    /// b(0) = r0 summed over layers.
    public let initialBudget: Int
    /// b(T) = target_r × layers.
    public let targetBudget: Int
    /// The budget after the last step's allocation.
    public private(set) var budget: Int
    /// Kept triplets per layer (peft's `rank_pattern`), set by the last masking.
    public private(set) var rankPattern: [String: [Bool]] = [:]
    private var sensitivity: [ObjectIdentifier: Matrix] = [:]   // Ī
    private var uncertainty: [ObjectIdentifier: Matrix] = [:]   // Ū

    public init(layers: [NamedAdapter], schedule: AdaLoRASchedule) throws {
        self.layers = try layers.map {
            guard let layer = $0.adapter as? AdaLoRALayer else {
                throw AdapterError.invalidSetting(name: "adalora mode peft", value: $0.name, allowed: "every adapted layer must be an AdaLoRA (SVD-form) layer")
            }
            return ($0.name, layer)
        }
        self.schedule = schedule
        self.initialBudget = self.layers.reduce(0) { $0 + $1.layer.rank }
        self.targetBudget = schedule.targetRank * self.layers.count
        self.budget = initialBudget
    }

    public var ranks: [String: Int] { Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0.layer.activeRank) }) }

    /// Ī and Ū of every factor (`<module>.lora_A.sensitivity`, …), the kept triplets as 0/1
    /// (`<module>.rank_pattern`) and the budget (`budget`).
    public var state: [String: Matrix] {
        var state = ["budget": Matrix(rows: 1, cols: 1, storage: [Float(budget)])]
        for (name, layer) in layers {
            for (factor, parameter) in Self.factors(of: layer) {
                if let mean = sensitivity[ObjectIdentifier(parameter)] { state["\(name).\(factor).sensitivity"] = mean }
                if let spread = uncertainty[ObjectIdentifier(parameter)] { state["\(name).\(factor).uncertainty"] = spread }
            }
            if let kept = rankPattern[name] { state["\(name).rank_pattern"] = Matrix(rows: 1, cols: kept.count, storage: kept.map { $0 ? 1 : 0 }) }
        }
        return state
    }

    public func restore(state: [String: Matrix]) throws {
        var unused = Set(state.keys)
        func take(_ key: String, shape: [Int]) throws -> Matrix? {
            guard let value = state[key] else { return nil }
            guard value.shape == shape else { throw AdapterError.shapeMismatch(what: "AdaLoRA state \(key)", found: value.shape, expected: shape) }
            unused.remove(key)
            return value
        }
        budget = Int(try take("budget", shape: [1, 1])?.storage[0] ?? Float(initialBudget))
        sensitivity.removeAll()
        uncertainty.removeAll()
        rankPattern.removeAll()
        for (name, layer) in layers {
            for (factor, parameter) in Self.factors(of: layer) {
                let key = ObjectIdentifier(parameter)
                sensitivity[key] = try take("\(name).\(factor).sensitivity", shape: parameter.value.shape)
                uncertainty[key] = try take("\(name).\(factor).uncertainty", shape: parameter.value.shape)
            }
            rankPattern[name] = try take("\(name).rank_pattern", shape: [1, layer.rank]).map { $0.storage.map { $0 != 0 } }
        }
        guard unused.isEmpty else {
            throw AdapterError.invalidSetting(name: "AdaLoRA state", value: unused.sorted().joined(separator: ", "), allowed: "no module of this model has it")
        }
    }

    private static func factors(of layer: AdaLoRALayer) -> [(String, Parameter)] {
        [("lora_A", layer.a), ("lora_E", layer.e), ("lora_B", layer.b)]
    }

    /// peft's regulariser R = (1/M)·Σ (‖A·Aᵀ − I‖_F + ‖Bᵀ·B − I‖_F) over the M factor matrices,
    /// unsquared (the paper's Eq. 4 squares and sums). ∂‖C‖_F/∂A = 2·C·A/‖C‖_F, likewise for B.
    public func addRegularizer() -> Float {
        let count = Float(2 * layers.count)
        let weight = schedule.orthogonalRegularization
        var total: Float = 0
        for (_, layer) in layers {
            for (parameter, rowsAreVectors) in [(layer.a, true), (layer.b, false)] {
                let p = parameter.value
                var gram = rowsAreVectors ? matmul(p, .n, p, .t) : matmul(p, .t, p, .n)
                for i in 0..<gram.rows { gram[i, i] -= 1 }
                let norm = frobeniusNorm(gram)
                total += norm
                guard norm > 0, weight != 0 else { continue }
                let factor = 2 * weight / (count * norm)
                if rowsAreVectors {
                    gemm(gram, .n, p, .n, into: &parameter.grad, alpha: factor, beta: 1)
                } else {
                    gemm(p, .n, gram, .n, into: &parameter.grad, alpha: factor, beta: 1)
                }
            }
        }
        return layers.isEmpty ? 0 : weight * total / count
    }

    /// The cubic schedule (paper Eq. 12; peft's `budget_schedule`) and whether step t masks.
    public func budgetSchedule(_ t: Int) -> (budget: Int, mask: Bool) {
        let ti = schedule.initialWarmup, tf = schedule.finalWarmup, total = schedule.totalSteps
        if t <= ti { return (initialBudget, false) }
        if t > total - tf { return (targetBudget, true) }
        let progress = 1 - Double(t - ti) / Double(total - tf - ti)
        let budget = Int(Double(initialBudget - targetBudget) * progress * progress * progress + Double(targetBudget))
        return (budget, t % schedule.maskInterval == 0)
    }

    /// peft's `update_and_allocate(t)`: importance EMA and masking while the budget shrinks, one
    /// forced final mask at t = T − t_f, then re-applying that final pattern every later step.
    public func afterOptimizerStep(_ t: Int, optimizer: AdamW) throws {
        let finalStep = schedule.totalSteps - schedule.finalWarmup
        if t < finalStep {
            updateImportance()
            let (budget, mask) = budgetSchedule(t)
            self.budget = budget
            if mask { maskToBudget(budget) }
        } else if t == finalStep {
            budget = budgetSchedule(t).budget
            maskToBudget(budget)
            sensitivity.removeAll()
            uncertainty.removeAll()
        } else {
            budget = budgetSchedule(t).budget
            for (name, layer) in layers {
                for (k, kept) in (rankPattern[name] ?? []).enumerated() where !kept { layer.e.value.storage[k] = 0 }
            }
        }
    }

    /// I = |p ⊙ ∂p| (after the step, with the step's gradient); Ī ← β1·Ī + (1−β1)·I;
    /// Ū ← β2·Ū + (1−β2)·|I − Ī| with the updated Ī (paper Eq. 8–9).
    private func updateImportance() {
        let b1 = schedule.beta1, b2 = schedule.beta2
        for (_, layer) in layers {
            for p in [layer.a, layer.e, layer.b] {
                let key = ObjectIdentifier(p)
                var mean = sensitivity[key] ?? .zeros(p.value.rows, p.value.cols)
                var spread = uncertainty[key] ?? .zeros(p.value.rows, p.value.cols)
                for i in 0..<p.value.count {
                    let importance = abs(p.value.storage[i] * p.grad.storage[i])
                    mean.storage[i] = b1 * mean.storage[i] + (1 - b1) * importance
                    spread.storage[i] = b2 * spread.storage[i] + (1 - b2) * abs(importance - mean.storage[i])
                }
                sensitivity[key] = mean
                uncertainty[key] = spread
            }
        }
    }

    /// s(p) = Ī ⊙ Ū; triplet score S_k = s(Λ_k) + mean_j s(Q_kj) + mean_i s(P_ik) (paper Eq. 10–11).
    private func tripletScores(_ layer: AdaLoRALayer) -> [Float] {
        func score(_ p: Parameter) -> Matrix {
            let key = ObjectIdentifier(p)
            return hadamard(sensitivity[key] ?? .zeros(p.value.rows, p.value.cols), uncertainty[key] ?? .zeros(p.value.rows, p.value.cols))
        }
        let sa = score(layer.a), se = score(layer.e), sb = score(layer.b)
        return (0..<layer.rank).map { k in
            var rowMean: Float = 0
            for j in 0..<sa.cols { rowMean += sa[k, j] }
            var columnMean: Float = 0
            for i in 0..<sb.rows { columnMean += sb[i, k] }
            return se.storage[k] + rowMean / Float(sa.cols) + columnMean / Float(sb.rows)
        }
    }

    /// Zeroes Λ_k wherever S_k ≤ θ, θ the (b0 − budget)-th smallest score over all layers
    /// (`torch.kthvalue`; ties over-prune, as peft). b0 = budget masks nothing.
    private func maskToBudget(_ budget: Int) {
        let scores = layers.map { tripletScores($0.layer) }
        let pruned = initialBudget - budget
        guard pruned > 0 else { return }
        let threshold = scores.flatMap { $0 }.sorted()[pruned - 1]
        for ((name, layer), layerScores) in zip(layers, scores) {
            let kept = layerScores.map { $0 > threshold }
            for (k, keep) in kept.enumerated() where !keep { layer.e.value.storage[k] = 0 }
            rankPattern[name] = kept
        }
    }
}
