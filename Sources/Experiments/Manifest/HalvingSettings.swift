import LoRABenchTensorIO

/// `selection.halving`: successive halving over each cell's learning rates (Jamieson & Talwalkar
/// 2016, "Non-stochastic best arm identification and hyperparameter optimization"; the rung
/// schedule of Li et al. 2017, Hyperband):
///
///     selection: {metric: accuracy, halving: {rungs: [100, 200, 400], keep: [4, 2]}}
///
/// Every candidate rate of a cell trains to the first rung; the `keep[0]` best by mean validation
/// metric over seeds continue from their checkpoint to the next rung, the `keep[1]` best of those
/// to the next, and so on; the last rung is `training.steps`, where the ordinary selection chooses
/// among the survivors. A budget spent on rates that are plainly worse early is spent on longer
/// training of the others instead.
public struct HalvingSettings: Equatable, Sendable {
    public static let keys = ["rungs", "keep"]

    /// The steps at which candidates are compared, strictly increasing; the last is `training.steps`.
    public var rungs: [Int]
    /// How many candidates continue past each rung but the last (one count per rung before it),
    /// strictly decreasing.
    public var keep: [Int]
    /// Where the block is written (`m.yaml:5:14`), for errors about a use it does not allow.
    public var location: String

    /// The rungs at which candidates are compared (every one but the last, which ends training).
    public var decisionRungs: [Int] { Array(rungs.dropLast()) }

    /// `candidates`: the most learning rates a cell has (its variant's list, or the training block's).
    package init(_ node: ManifestNode, training: TrainingSettings, candidates: Int) throws {
        let block = try node.mapping(keys: Self.keys)
        let position: [Int?] = [node.node.mark?.line, node.node.mark?.column]
        location = ([node.file] + position.compactMap { $0.map(String.init) }).joined(separator: ":")
        let steps = training.steps
        let rungsAllowed = "a list of at least two steps, strictly increasing, the last training.steps (\(steps))"
        let rungsNode = try block.required("rungs", allowed: rungsAllowed)
        let rungNodes = try rungsNode.list(allowed: rungsAllowed)
        guard rungNodes.count >= 2 else {
            throw rungsNode.error(allowed: rungsAllowed + ": with one rung every candidate trains to the end",
                                  found: rungNodes.isEmpty ? "an empty list" : "one rung")
        }
        rungs = []
        for (index, rungNode) in rungNodes.enumerated() {
            let rung = try rungNode.int(allowed: "a step from 1 to training.steps (\(steps))", in: 1...steps)
            if let previous = rungs.last, rung <= previous {
                throw rungNode.error(allowed: "steps strictly increasing", found: "\(rung) after \(previous)")
            }
            if index == rungNodes.count - 1, rung != steps {
                throw rungNode.error(allowed: "training.steps (\(steps)) as the last rung: the survivors of the rung before it train to the end")
            }
            // A rung decides on the validation metric logged at its step; only evaluation steps log one.
            if rung < steps, rung % training.evalInterval != 0 {
                throw rungNode.error(allowed: "a multiple of training.eval_interval (\(training.evalInterval)): a rung decides on the "
                                     + "validation metric of the evaluation at its step")
            }
            rungs.append(rung)
        }

        let decisions = rungs.count - 1
        let keepAllowed = decisions == 1
            ? "an integer from 1 to \(max(1, candidates - 1)) (fewer than the \(candidates) learning rates of the largest cell), or a list of one"
            : "a list of \(decisions) integers, one per rung before the last, strictly decreasing, the first below the \(candidates) "
                + "learning rates of the largest cell"
        let keepNode = try block.required("keep", allowed: keepAllowed)
        let keepNodes: [ManifestNode]
        if case .sequence = keepNode.node {
            keepNodes = try keepNode.list(allowed: keepAllowed)
        } else if decisions == 1 {
            keepNodes = [keepNode]
        } else {
            // The same count at every rung would cut only at the first: the later rungs would decide nothing.
            throw keepNode.error(allowed: keepAllowed, found: "\(keepNode.foundDescription) for \(decisions) rungs before the last")
        }
        guard keepNodes.count == decisions else {
            throw keepNode.error(allowed: keepAllowed, found: "\(keepNodes.count) count\(keepNodes.count == 1 ? "" : "s")")
        }
        keep = []
        for keepEntry in keepNodes {
            let upper = keep.last.map { $0 - 1 } ?? candidates - 1
            let what = keep.isEmpty ? "fewer than the \(candidates) learning rates of the largest cell"
                                    : "fewer than the \(keep.last!) kept at the rung before"
            let count = try keepEntry.int(allowed: "an integer ≥ 1, \(what)", in: 1...Int.max)
            guard count <= upper else {
                throw keepEntry.error(allowed: upper >= 1 ? "an integer from 1 to \(upper) (\(what))"
                                                          : "no rung after one that keeps 1: leave this rung out of rungs")
            }
            keep.append(count)
        }
    }

    /// The rungs at which a cell of `candidates` learning rates compares them: where more are
    /// left than the rung keeps (a cell with fewer candidates skips a rung that would cut none).
    public func decisionRungs(candidates: Int) -> [(rung: Int, keep: Int)] {
        var left = candidates
        var decisions: [(rung: Int, keep: Int)] = []
        for (rung, count) in zip(decisionRungs, keep) where left > count {
            decisions.append((rung, count))
            left = count
        }
        return decisions
    }

    /// The rung's number as selection.csv and the report count them, from 1.
    public func rungNumber(ofStep step: Int) -> Int? { rungs.firstIndex(of: step).map { $0 + 1 } }
}
