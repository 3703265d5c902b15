import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop
import LoRABenchResults

/// Wraps one module's frozen base layer in the run's adapter, or returns nil to leave it frozen.
public typealias AdapterFactory = (_ module: ModuleShape, _ base: FrozenLinear) throws -> (any Adapter)?

/// One evaluation: every metric of `TaskSettings.evalMetrics`, and the prediction on every
/// example, in index order: a class for a classification task, a score for a GLUE regression,
/// the generated text for a completion task (nil for the synthetic task).
public struct Evaluation {
    public var metrics: [String: Double]
    public var predictions: [Prediction]?
    public var scorePredictions: [ScorePrediction]?
    public var textPredictions: [TextPrediction]?

    public init(metrics: [String: Double], predictions: [Prediction]? = nil, scorePredictions: [ScorePrediction]? = nil,
                textPredictions: [TextPrediction]? = nil) {
        self.metrics = metrics
        self.predictions = predictions
        self.scorePredictions = scorePredictions
        self.textPredictions = textPredictions
    }

    /// predictions.csv's text in the format of the predictions' kind; nil when there are none.
    public var predictionsCSV: String? {
        if let textPredictions { return TextPredictionsCSV.text(textPredictions) }
        if let scorePredictions { return ScorePredictionsCSV.text(scorePredictions) }
        return predictions.map(PredictionsCSV.text)
    }
}

/// What a manifest's `task:` block parses to: resolved settings (defaults filled in) that are
/// enough to validate a sweep before any work and to build the task.
public protocol TaskSettings {
    var name: String { get }
    /// The models this task can train; the first is the default when the manifest names none.
    var models: [String] { get }
    /// Every adaptable module of the model, in model order.
    var modules: [ModuleShape] { get }
    /// What `evaluate()` reports; the first is the primary metric ("loss").
    var evalMetrics: [EvalMetric] { get }
    /// Whether the model has a head that trains with the adapters, so `head_only` runs have
    /// something to train.
    var hasHead: Bool { get }
    /// The classes a classifier predicts, labelled 0..<labelCount; nil for a regression task.
    var labelCount: Int? { get }
    /// Training examples held out as the `validation` split (`task.validation_examples`); nil: none.
    var validationExamples: Int? { get }
    /// Whether the task holds a `validation` split: training examples held out, or a file of its own.
    var hasValidationSplit: Bool { get }
    /// The resolved block as written to each run's settings.yaml (and hashed into its id).
    var resolved: Node { get }
    /// Builds the data and the frozen base model: deterministic in the settings, shared by runs.
    func makeTask() throws -> any ExperimentTask
}

extension TaskSettings {
    public var labelCount: Int? { nil }
    public var hasValidationSplit: Bool { validationExamples != nil }
}

/// A task built once per sweep: data plus a frozen base model, from which each run gets a fresh
/// model carrying its own adapters.
public protocol ExperimentTask: AnyObject {
    /// A fresh model for one run: the frozen base, its weights in `base`'s format, with `adapt`
    /// applied to every module, batches drawn in an order fixed by `seed`.
    func makeModel(seed: UInt64, batchSize: Int, base: BaseWeightFormat, adapt: AdapterFactory) throws -> any TaskModel
    /// What the data did that every run's metrics.csv records at step 0, such as the examples
    /// of each split cut to the task's length: nothing about the data is changed silently.
    var dataMetrics: [MetricRow] { get }
}

extension ExperimentTask {
    public var dataMetrics: [MetricRow] { [] }
}

/// One run's model: what the runner trains and evaluates.
public protocol TaskModel: AnyObject {
    /// The adapted modules (not the frozen ones), in model order.
    var adapters: [NamedAdapter] { get }
    /// Everything the optimizer updates: adapter tensors plus any task head.
    var trainableParameters: [Parameter] { get }
    var parameterReport: ParameterReport { get }
    /// Forward and backward on the next training batch: accumulates gradients, returns the loss.
    func trainOnNextBatch() throws -> Float
    /// The tokens (padding excluded) of the batch `trainOnNextBatch` last trained on; an example
    /// without tokens (the synthetic task's vectors) counts as one. What tokens per second count.
    var lastBatchTokenCount: Int { get }
    /// Every metric of `TaskSettings.evalMetrics` on one held-out split (and, for a
    /// classifier, its predictions). `.validation` needs `validation_examples`.
    func evaluate(_ split: EvalSplit) throws -> Evaluation
    /// Where training is in the data (epoch, position, shuffle state): a checkpoint saves it so
    /// that a resumed run sees the batches it would have seen.
    var dataPosition: [UInt64] { get }
    /// Continues from a saved `dataPosition`.
    func restore(dataPosition: [UInt64]) throws
}

extension TaskModel {
    /// The metrics on the task's own held-out set (`eval`).
    public func evaluate() throws -> [String: Double] { try evaluate(.eval).metrics }
}

/// An evaluation on a split the task does not hold (`validation` without `validation_examples`).
public struct HeldOutSplitError: Error, CustomStringConvertible {
    public var split: EvalSplit

    public var description: String { "the task holds no \(split.rawValue) split; set task.validation_examples to hold one out" }
}

/// A saved data position that does not fit the run's data.
public struct DataPositionError: Error, CustomStringConvertible {
    public var found: [UInt64]
    public var expected: String

    public var description: String { "the checkpoint's data position \(found.prefix(4)) does not fit this task: expected \(expected)" }
}

/// A run's model on a pretrained base, whose trained adapter is saved in peft's layout
/// (`PeftCheckpoint`) so that `PeftModel.from_pretrained` can load it.
public protocol PeftExportable: TaskModel {
    /// The sha256 of the base weights, recorded in the adapter's metadata (nil when unknown).
    var baseModelSHA256: String? { get }
    /// peft's `modules_to_save` (a head trained outright) and their tensors by peft name.
    var savedModules: (names: [String], tensors: [String: TensorToWrite]) { get }
    /// Fills the config's model fields (`base_model_name_or_path`, `task_type`, `modules_to_save`, …).
    func describe(_ config: inout PeftConfig) throws
}

/// The tasks a manifest may name; each task lists its models (`TaskSettings.models`).
public enum TaskCatalog {
    public static var available: [String] { TaskRegistry.tasks.map { $0.name } }

    /// Parses `task:`: a name (`task: synthetic`) or a mapping with `name` and the task's settings.
    /// `model` is the manifest's model name, unchecked (nil: none), for a task that runs on several.
    package static func parse(_ node: ManifestNode, model: String?) throws -> any TaskSettings {
        let nameNode: ManifestNode
        if case .mapping = node.node {
            let keys = node.node.mapping?.keys.compactMap(\.scalar?.string) ?? []
            guard keys.contains("name") else {
                throw ManifestNode(node: node.node, keyPath: node.child("name"), file: node.file)
                    .error(allowed: "a task name: " + available.joined(separator: ", "), found: "nothing (the required key 'name' is missing)")
            }
            nameNode = ManifestNode(node: node.node.mapping!["name"]!, keyPath: node.child("name"), file: node.file)
        } else {
            nameNode = node
        }
        let name = try nameNode.string(allowed: "a task name: " + available.joined(separator: ", "))
        guard let definition = TaskRegistry.tasks.first(where: { $0.name == name }) else {
            throw nameNode.error(allowed: available.joined(separator: ", "), suggestion: closestMatch(to: name, in: available))
        }
        return try definition.settings(node, model: model)
    }
}
