import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining

/// What happens to AdamW's moments of A and B when they change shape.
public enum OptimizerStatePolicy: String, CaseIterable, Sendable {
    /// Zero m and v and restart the bias-correction step count of the two tensors.
    case reset
    /// Map m (and v elementwise with squared coefficients) into the new basis; keep step counts.
    case project
}

/// Settings of AdaLoRA's svd-prune mode (our design, not peft; see Experiments/README.md).
public struct SVDPruneSettings: Sendable, Equatable {
    /// Re-factor every `interval` optimizer steps.
    public var interval: Int
    /// ε: keep the fewest triplets whose energy Σσ² reaches ε of the total.
    public var energy: Float
    public var minRank: Int
    public var maxRank: Int
    /// First step that may prune (B = 0 at init makes ΔW = 0 before training has moved it).
    public var startStep: Int
    /// Ranks are frozen after this step.
    public var stopStep: Int
    public var optimizerState: OptimizerStatePolicy

    public init(interval: Int, energy: Float, minRank: Int = 1, maxRank: Int, startStep: Int, stopStep: Int,
                optimizerState: OptimizerStatePolicy = .reset) throws {
        guard interval >= 1 else {
            throw AdapterError.invalidSetting(name: "svd-prune interval", value: "\(interval)", allowed: "it must be ≥ 1")
        }
        guard energy > 0, energy <= 1 else {
            throw AdapterError.invalidSetting(name: "svd-prune energy_threshold", value: "\(energy)", allowed: "it must be in (0, 1]")
        }
        guard minRank >= 1, minRank <= maxRank else {
            throw AdapterError.invalidSetting(name: "svd-prune min_rank/max_rank", value: "\(minRank)/\(maxRank)",
                                              allowed: "need 1 ≤ min_rank ≤ max_rank")
        }
        guard startStep >= interval, startStep <= stopStep else {
            throw AdapterError.invalidSetting(name: "svd-prune start_step", value: "\(startStep)",
                                              allowed: "need interval (\(interval)) ≤ start_step ≤ stop_step (\(stopStep))")
        }
        self.interval = interval
        self.energy = energy
        self.minRank = minRank
        self.maxRank = maxRank
        self.startStep = startStep
        self.stopStep = stopStep
        self.optimizerState = optimizerState
    }
}

/// The rank the energy rule keeps for singular values σ (descending): the smallest k with
/// Σ_{i≤k} σ_i² ≥ ε·Σ_i σ_i², clamped to [minRank, maxRank]; nil when every σ is 0.
public func energyRank(_ singularValues: [Float], energy: Float, minRank: Int, maxRank: Int) -> Int? {
    let squares = singularValues.map { Double($0) * Double($0) }
    let total = squares.reduce(0, +)
    guard total > 0 else { return nil }
    var cumulative = 0.0
    var k = squares.count
    for (i, square) in squares.enumerated() {
        cumulative += square
        if cumulative >= Double(energy) * total {
            k = i + 1
            break
        }
    }
    return min(max(k, minRank), maxRank)
}

/// AdaLoRA's svd-prune mode: every `interval` steps, the SVD of each layer's B·A keeps the
/// top-k triplets that hold `energy` of Σσ², and B, A are re-factored as U_k·Σ_k^½ and Σ_k^½·V_kᵀ
/// (the best rank-k approximation, Eckart–Young). The scaling stays at its initial value so the
/// function is continuous across a re-factoring.
public final class SVDPruneMethod: StatelessAdaptationMethod {
    public let layers: [(name: String, adapter: any LowRankFactored)]
    public let settings: SVDPruneSettings

    public init(layers: [NamedAdapter], settings: SVDPruneSettings) throws {
        self.layers = try layers.map {
            guard let factored = $0.adapter as? any LowRankFactored else {
                throw AdapterError.invalidSetting(name: "adalora mode svd-prune", value: $0.name,
                                                  allowed: "every adapted layer must be a LoRA or DoRA layer")
            }
            return ($0.name, factored)
        }
        self.settings = settings
    }

    public var ranks: [String: Int] { Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0.adapter.rank) }) }

    public func addRegularizer() -> Float { 0 }

    public func afterOptimizerStep(_ step: Int, optimizer: AdamW) throws {
        guard step >= settings.startStep, step <= settings.stopStep, step % settings.interval == 0 else { return }
        for (_, adapter) in layers { try prune(adapter, optimizer: optimizer) }
    }

    /// The SVD of M = B·A without forming the out×in product: B = Q_B·R_B, Aᵀ = Q_A·R_A (QR),
    /// C = R_B·R_Aᵀ = U_c·Σ·V_cᵀ (r×r), so M = (Q_B·U_c)·Σ·(Q_A·V_c)ᵀ.
    public static func factoredSVD(a: Matrix, b: Matrix) throws -> (core: SVD, qa: Matrix, ra: Matrix, qb: Matrix, rb: Matrix) {
        let (qb, rb) = try qr(b)
        let (qa, ra) = try qr(a.transposed)
        let core = try svd(matmul(rb, .n, ra, .t))
        return (core, qa, ra, qb, rb)
    }

    package func prune(_ adapter: any LowRankFactored, optimizer: AdamW) throws {
        let r = adapter.rank
        guard adapter.a.value.cols >= r, adapter.b.value.rows >= r else { return }
        let (core, qa, ra, qb, rb) = try Self.factoredSVD(a: adapter.a.value, b: adapter.b.value)
        guard let k = energyRank(core.singularValues, energy: settings.energy, minRank: settings.minRank,
                                 maxRank: min(settings.maxRank, r)), k < r else { return }
        let roots = core.singularValues.prefix(k).map { $0.squareRoot() }
        // Uc_k·Σ_k^½ [r, k] and Σ_k^½·Vc_kᵀ [k, r].
        var leftCore = core.u.selectingColumns(Array(0..<k))
        scaleColumns(&leftCore, by: roots)
        var rightCore = core.vt.rowSlice(0..<k)
        scaleRows(&rightCore, by: roots)
        let newB = matmul(qb, .n, leftCore, .n)
        let newA = matmul(rightCore, .n, qa, .t)
        let oldStates = (optimizer.state(of: adapter.a), optimizer.state(of: adapter.b))
        adapter.a.resize(to: newA)
        adapter.b.resize(to: newB)
        switch settings.optimizerState {
        case .reset:
            optimizer.setState(nil, of: adapter.a)
            optimizer.setState(nil, of: adapter.b)
        case .project:
            guard let stateA = oldStates.0, let stateB = oldStates.1,
                  let raInverse = try? invertUpperTriangular(ra), let rbInverse = try? invertUpperTriangular(rb) else {
                optimizer.setState(nil, of: adapter.a)
                optimizer.setState(nil, of: adapter.b)
                return
            }
            // A' = T_k·A with T_k = Σ_k^½·Vc_kᵀ·R_A⁻ᵀ [k, r]; B' = B·S_k with S_k = R_B⁻¹·Uc_k·Σ_k^½ [r, k].
            // For an unchanged product gradient ∂A' = S_kᵀ·∂A and ∂B' = ∂B·T_kᵀ: first moments map
            // the same way, second moments with squared coefficients (a diagonal approximation).
            let t = matmul(rightCore, .n, raInverse, .t)
            let s = matmul(rbInverse, .n, leftCore, .n)
            let sSquared = hadamard(s, s), tSquared = hadamard(t, t)
            optimizer.setState(.init(m: matmul(s, .t, stateA.m, .n), v: matmul(sSquared, .t, stateA.v, .n), step: stateA.step), of: adapter.a)
            optimizer.setState(.init(m: matmul(stateB.m, .n, t, .t), v: matmul(stateB.v, .n, tSquared, .t), step: stateB.step), of: adapter.b)
        }
    }
}
