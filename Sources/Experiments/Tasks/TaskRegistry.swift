/// A task a manifest may name (`task: sst2`): one file plus one line of `TaskRegistry.tasks`. The
/// manifest, grid, runner and report reach a task only through this and `TaskSettings`.
public protocol TaskDefinition: Sendable {
    /// The manifest's `task:` name.
    static var name: String { get }
    /// The task's settings from the manifest's `task:` node: a bare name (all defaults) or a
    /// mapping with `name` and the task's own keys; `model` is the manifest's model name as
    /// written (nil: none), which `ModelSettings` checks against the task's `models` afterwards.
    static func settings(_ node: ManifestNode, model: String?) throws -> any TaskSettings
}

/// Every task a manifest may name, in the order `lorabench validate` lists them.
public enum TaskRegistry {
    public static let tasks: [any TaskDefinition.Type] = [
        SyntheticTaskDefinition.self,
        SST2.self,
        RTE.self,
        CoLA.self,
        MRPC.self,
        STSB.self,
        CompletionTaskDefinition.self,
    ]
}
