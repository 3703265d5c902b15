import LoRABenchTensorIO

/// summary.csv: one row per finished run — its axis values, how it ended, its eval metrics
/// (final and best; with a validation split, the same on it), its size and its speed.
public enum SummaryCSV {
    public static func columns(evalMetrics: [EvalMetric], showingBase: Bool = false, learningRateAxis: Bool = false,
                               validation: Bool = false) -> [String] {
        let eval: [String] = evalMetrics.flatMap { ["final_eval_\($0.name)", "best_eval_\($0.name)"] }
        let held: [String] = validation ? evalMetrics.flatMap { ["final_validation_\($0.name)", "best_validation_\($0.name)"] } : []
        let measures: [String] = ["final_train_loss", "steps_completed", "mean_final_rank", "trainable_parameters",
                                  "trainable_share", "wall_seconds", "steps_per_second", "training_seconds",
                                  "train_tokens_per_second", "peak_rss_mb", "adapter_bytes"]
        return AxisColumns.names(showingBase: showingBase, learningRateAxis: learningRateAxis) + ["status", "reason"] + eval + held + measures
    }

    /// `axisValues`: the run's values of the axis columns (`RunSpec.axisValues`).
    package static func row(axisValues: [String], outcome: RunOutcome, evalMetrics: [EvalMetric], validation: Bool = false) -> [String] {
        func number(_ value: Double?) -> String { value.map(formatMetric) ?? "" }
        var eval: [String] = evalMetrics.flatMap { [number(outcome.finalEval[$0.name]), number(outcome.bestEval[$0.name])] }
        if validation {
            eval += evalMetrics.flatMap { [number(outcome.finalValidation?[$0.name]), number(outcome.bestValidation?[$0.name])] }
        }
        let wallSeconds: Double = (outcome.wallSeconds * 1000).rounded() / 1000
        let stepsPerSecond: Double = (outcome.stepsPerSecond * 10).rounded() / 10
        let trainingSeconds = outcome.trainingSeconds.map { ($0 * 1000).rounded() / 1000 }
        let tokensPerSecond = outcome.trainTokensPerSecond.map { ($0 * 10).rounded() / 10 }
        let peakMegabytes = outcome.peakResidentBytes.map { (Double($0) / 1_048_576 * 10).rounded() / 10 }
        let measures: [String] = [number(outcome.finalTrainLoss), String(outcome.stepsCompleted), number(outcome.meanFinalRank),
                                  String(outcome.trainableParameters), number(outcome.trainableShare),
                                  number(wallSeconds), number(stepsPerSecond), number(trainingSeconds), number(tokensPerSecond),
                                  number(peakMegabytes), outcome.adapterBytes.map(String.init) ?? ""]
        return axisValues + [outcome.status.rawValue, outcome.reason] + eval + measures
    }
}
