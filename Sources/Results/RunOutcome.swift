import Foundation

/// How a run ended, written last to `runs/<id>/outcome.json`: its presence is what marks the run
/// finished, so a run killed at any earlier point is redone by `--resume`.
public struct RunOutcome: Codable, Equatable, Sendable {
    public enum Status: String, Codable, CaseIterable, Sendable {
        case completed
        /// The loss, the gradient norm or an eval metric became NaN or infinite, or a parameter
        /// exploded; `reason` names what and the step.
        case diverged
        /// An error stopped the run; `reason` says which.
        case failed
        /// Successive halving (`selection.halving`) stopped the run at a rung, its learning rate
        /// outranked there; `reason` names the rung, its step and the candidate's mean. Neither a
        /// failure nor a divergence, and never among a cell's reported runs.
        case stopped
    }

    public var runID: String
    public var status: Status
    /// Empty when completed; otherwise what happened (and at which step).
    public var reason: String
    public var stepsCompleted: Int
    /// The last evaluation's metrics; empty unless the run completed.
    public var finalEval: [String: Double]
    /// The best value of each eval metric over the run (for loss: the lowest).
    public var bestEval: [String: Double]
    /// The same two on the validation split; nil (and absent from the JSON) without one. A
    /// stopped run's final validation metrics are those of its rung, the ones it was ranked by.
    public var finalValidation: [String: Double]? = nil
    public var bestValidation: [String: Double]? = nil
    /// The mean train loss of the last logging interval.
    public var finalTrainLoss: Double?
    /// Each adapted module's rank at the end (AdaLoRA: after pruning).
    public var finalRanks: [String: Int]
    /// Trainable parameters at the end (svd-prune shrinks them) and all parameters of the model.
    public var trainableParameters: Int
    public var totalParameters: Int
    public var wallSeconds: Double
    public var stepsPerSecond: Double
    /// The cost of the run as peft's method comparison records it, each nil in outcomes written
    /// before it was recorded: seconds inside training steps (evaluations and setup excluded),
    /// training tokens (padding excluded) per such second, the process's peak resident bytes
    /// over the run, and the bytes of the saved adapter's files.
    public var trainingSeconds: Double? = nil
    public var trainTokensPerSecond: Double? = nil
    public var peakResidentBytes: Int? = nil
    public var adapterBytes: Int? = nil
    public var blasThreads: Int
    /// The OpenBLAS kernel set the run used ("SkylakeX", "Haswell", …): another set rounds sgemm
    /// differently, so it is part of what reproduces a run's numbers bit for bit. Absent in
    /// outcomes written before it was recorded.
    public var blasKernels: String? = nil
    /// The instruction set of LoRABench's own vector kernels ("x86-64-v4", "x86-64-v3",
    /// "baseline"; `VectorKernels`): the baseline rounds the narrow adapter products without FMA.
    /// Absent in outcomes written before it was recorded.
    public var vectorKernels: String? = nil

    /// Spelled out because the memberwise initializer is internal and the runner, which
    /// writes outcomes, is another target.
    package init(runID: String, status: Status, reason: String, stepsCompleted: Int, finalEval: [String: Double],
                 bestEval: [String: Double], finalValidation: [String: Double]? = nil, bestValidation: [String: Double]? = nil,
                 finalTrainLoss: Double?, finalRanks: [String: Int], trainableParameters: Int, totalParameters: Int,
                 wallSeconds: Double, stepsPerSecond: Double, blasThreads: Int, blasKernels: String? = nil, vectorKernels: String? = nil) {
        self.runID = runID
        self.status = status
        self.reason = reason
        self.stepsCompleted = stepsCompleted
        self.finalEval = finalEval
        self.bestEval = bestEval
        self.finalValidation = finalValidation
        self.bestValidation = bestValidation
        self.finalTrainLoss = finalTrainLoss
        self.finalRanks = finalRanks
        self.trainableParameters = trainableParameters
        self.totalParameters = totalParameters
        self.wallSeconds = wallSeconds
        self.stepsPerSecond = stepsPerSecond
        self.blasThreads = blasThreads
        self.blasKernels = blasKernels
        self.vectorKernels = vectorKernels
    }

    package enum CodingKeys: String, CodingKey {
        case runID = "run_id", status, reason, stepsCompleted = "steps_completed", finalEval = "final_eval"
        case bestEval = "best_eval", finalValidation = "final_validation", bestValidation = "best_validation"
        case finalTrainLoss = "final_train_loss", finalRanks = "final_ranks"
        case trainableParameters = "trainable_parameters", totalParameters = "total_parameters"
        case wallSeconds = "wall_seconds", stepsPerSecond = "steps_per_second", blasThreads = "blas_threads"
        case trainingSeconds = "training_seconds", trainTokensPerSecond = "train_tokens_per_second"
        case peakResidentBytes = "peak_resident_bytes", adapterBytes = "adapter_bytes"
        case blasKernels = "blas_kernels", vectorKernels = "vector_kernels"
    }

    public var meanFinalRank: Double? {
        finalRanks.isEmpty ? nil : Double(finalRanks.values.reduce(0, +)) / Double(finalRanks.count)
    }

    public var trainableShare: Double { totalParameters > 0 ? Double(trainableParameters) / Double(totalParameters) : 0 }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> RunOutcome {
        try JSONDecoder().decode(RunOutcome.self, from: data)
    }
}
