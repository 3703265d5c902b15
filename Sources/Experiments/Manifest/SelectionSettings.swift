import LoRABenchTensorIO
import LoRABenchResults

/// The manifest's `selection:` block: which setting of an axis each cell reports, chosen by the
/// best mean over seeds of a metric on the validation split (`task.validation_examples`):
///
///     selection: {metric: accuracy, split: validation, over: [learning_rate]}
///
/// With `halving: {rungs: […], keep: …}` the candidates are compared at rungs along the way and
/// only the best continue (`HalvingSettings`).
///
/// The eval split is where results are measured (GLUE's dev set is the test set here), so it is
/// never a split to choose on: a setting chosen on the numbers it is then reported with would make
/// them optimistic.
public struct SelectionSettings: Equatable, Sendable {
    public static let keys = ["metric", "split", "over", "halving"]
    /// The axes a selection can choose over.
    public static let selectableAxes = ["learning_rate"]

    /// The metric whose mean validation value decides (and which way is better).
    public var metric: EvalMetric
    /// The axes chosen over; the cells are every other axis but the seed.
    public var over: [String]
    /// Always `validation`: the only split a selection may read.
    public let split = EvalSplit.validation
    /// Successive halving over the candidates; nil: every candidate trains to the end.
    public var halving: HalvingSettings?

    /// `candidates`: the most learning rates a variant has (its own list, or the training block's).
    package init(_ node: ManifestNode, task: any TaskSettings, training: TrainingSettings, candidates: Int) throws {
        let block = try node.mapping(keys: Self.keys)
        let learningRateAxis = candidates > 1
        let names = task.evalMetrics.map(\.name)
        // The task's headline metric (its first after the loss) unless the block names one.
        let name = try block.optional("metric").map { try $0.choice(names) } ?? names.dropFirst().first ?? names[0]
        metric = task.evalMetrics.first { $0.name == name }!
        if let splitNode = block.optional("split") {
            let split = try splitNode.string(allowed: "validation")
            guard split == EvalSplit.validation.rawValue else {
                if ["eval", "dev", "test"].contains(split) {
                    throw splitNode.error(allowed: "validation (the eval split is the task's held-out set, where results are measured: "
                                          + "GLUE's dev set is the test set here, so nothing is chosen on it)")
                }
                throw splitNode.error(allowed: "validation", suggestion: closestMatch(to: split, in: [EvalSplit.validation.rawValue]))
            }
        }
        over = Self.selectableAxes
        if let overNode = block.optional("over") {
            let allowed = Self.selectableAxes.joined(separator: ", ")
            let nodes = try overNode.axis(allowed: "a list of axes: " + allowed)
            over = try nodes.map { try $0.choice(Self.selectableAxes) }
            for (index, axis) in over.enumerated() where over[..<index].contains(axis) {
                throw nodes[index].error(allowed: "distinct axes", found: "\(axis) a second time")
            }
            if !learningRateAxis {
                throw overNode.error(allowed: "an axis with several values: give training.learning_rate or a variant's learning_rate a list",
                                     found: "learning_rate, which has one value for every variant")
            }
        } else if !learningRateAxis {
            throw node.error(allowed: "a selection over an axis with several values: give training.learning_rate or a variant's "
                             + "learning_rate a list", found: "a selection over learning_rate, which has one value for every variant")
        }
        guard task.hasValidationSplit else {
            throw node.error(allowed: "a selection on a validation split: set task.validation_examples to hold training examples out",
                             found: "a selection, but task \(task.name) holds no validation split")
        }
        halving = try block.optional("halving").map { try HalvingSettings($0, training: training, candidates: candidates) }
    }

    /// The summary.csv column selection reads, e.g. `final_validation_accuracy`.
    public var column: String { "final_\(split.rawValue)_\(metric.name)" }
}

extension SelectedSettings {
    /// The selection.csv of choices made as the manifest's `selection:` block asks.
    public init(choices: [SelectionChoice], cellAxes: [String], settings: SelectionSettings) {
        self.init(choices: choices, cellAxes: cellAxes, metric: settings.metric, rungs: settings.halving?.rungs)
    }
}
