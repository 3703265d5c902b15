/// The columns that name a run in an experiment's metrics.csv and summary.csv, before its
/// measurements: its id, then its axis values (the runner's `RunSpec.axisValues` fills them).
public enum AxisColumns {
    /// For an experiment on a float32 base with one learning rate per variant.
    public static let names = ["run_id", "variant", "rank", "alpha", "seed", "init", "target_modules", "dropout", "use_rslora"]

    /// An experiment on a quantized base adds `base`, one that sweeps learning rates adds
    /// `learning_rate` (last), so other experiments keep their columns.
    public static func names(showingBase: Bool, learningRateAxis: Bool = false) -> [String] {
        names + (showingBase ? ["base"] : []) + (learningRateAxis ? ["learning_rate"] : [])
    }
}
