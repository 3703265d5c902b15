import LoRABenchData

/// A GLUE task: its data under `Data/<name>/` (`train.tsv`, `dev.tsv`) and its labels; the
/// training and evaluation are `GLUETaskSettings`' and `GLUEExperiment`'s, shared by every one.
public protocol GLUETaskDefinition: TaskDefinition {
    static var task: GLUETask { get }
}

extension GLUETaskDefinition {
    public static var name: String { task.name }

    public static func settings(_ node: ManifestNode) throws -> any TaskSettings {
        try GLUETaskSettings(node, task: task)
    }
}
