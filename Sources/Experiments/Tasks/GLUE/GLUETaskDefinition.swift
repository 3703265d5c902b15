import LoRABenchData
import LoRABenchResults

/// A GLUE task: its data under `Data/<name>/` (`train.tsv`, `dev.tsv`) and its labels; the
/// training and evaluation are `GLUETaskSettings`' and `GLUEExperiment`'s, shared by every one.
public protocol GLUETaskDefinition: TaskDefinition {
    static var task: GLUETask { get }
    /// What a language model reads (a manifest may override it): a template and one word per label.
    static var prompt: ClassificationPrompt { get }
    /// The metrics GLUE scores the task by, its official one first (the report's headline and a
    /// selection's default).
    static var metrics: [GLUEMetric] { get }
}

extension GLUETaskDefinition {
    public static var name: String { task.name }

    public static func settings(_ node: ManifestNode, model: String?) throws -> any TaskSettings {
        try GLUETaskSettings(node, task: task, prompt: prompt, metrics: metrics, model: model)
    }

    public static var metrics: [GLUEMetric] { [.accuracy] }
}
