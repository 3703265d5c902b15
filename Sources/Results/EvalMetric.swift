/// An evaluation metric and which direction is better (for the summary's `best_eval_<name>`).
public struct EvalMetric: Equatable, Sendable {
    public var name: String
    public var higherIsBetter: Bool

    public init(name: String, higherIsBetter: Bool) {
        self.name = name
        self.higherIsBetter = higherIsBetter
    }
}

/// The held-out sets a run is evaluated on, by their `split` in metrics.csv: `eval` is the task's
/// own held-out set (GLUE's dev set, which serves as the test set here), `validation` the
/// examples `task.validation_examples` holds out of the training set, on which settings are chosen.
public enum EvalSplit: String, CaseIterable, Sendable {
    case eval, validation
}
