import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// `learning_rate` as an axis (at the top of `training` and per variant), a variant's own
/// `ranks` and `use_rslora`, and the run ids a single learning rate keeps.
@Suite struct LearningRateAxisTests {
    func runs(_ sweep: String, training: String = "  learning_rate: 1e-3\n  steps: 100") throws -> [RunSpec] {
        try Manifest(yaml: "task: synthetic\ntraining:\n\(training)\nsweep:\n\(sweep)\n", file: "m.yaml").runs
    }

    @Test func aListOfLearningRatesIsAnAxisOfRunsJustOutsideTheSeeds() throws {
        let grid = try runs("  variants: [lora, {name: dora, learning_rate: [1e-2, 3e-2, 1e-1]}]\n  ranks: [4, 8]\n  seeds: [0, 1]",
                            training: "  learning_rate: [1e-3, 3e-3]\n  steps: 100")
        #expect(grid.count == 2 * 2 * 2 + 2 * 3 * 2)
        #expect(grid.prefix(8).map { "\($0.variant.label)/\($0.rank)/\(formatNumber($0.learningRate))/\($0.seed)" } == [
            "lora/4/0.001/0", "lora/4/0.001/1", "lora/4/0.003/0", "lora/4/0.003/1",
            "lora/8/0.001/0", "lora/8/0.001/1", "lora/8/0.003/0", "lora/8/0.003/1",
        ])
        #expect(Set(grid.filter { $0.variant.label == "dora" }.map(\.learningRate)) == [1e-2, 3e-2, 1e-1])
        #expect(Set(grid.map(\.id)).count == grid.count)
        // The learning rate is a column, after the other axes.
        #expect(RunSpec.axisColumns(showingBase: false, learningRateAxis: true).last == "learning_rate")
        #expect(grid[2].axisValues.last == "0.003")
        #expect(grid[2].axisValues.count == RunSpec.axisColumns.count + 1)
        // Each run's settings hold its own rate: in the training block when it comes from there.
        #expect(grid[2].settingsYAML.contains("training:\n  learning_rate: 0.003\n"))
        #expect(grid[2].settingsYAML.contains("variant:\n  label: lora\n  name: lora\n  adapter: lora\n  learning_rate: 0.003\n"))
        let dora = try #require(grid.first { $0.variant.label == "dora" })
        #expect(dora.settingsYAML.contains("training:\n  learning_rate: [0.001, 0.003]\n"))
        #expect(dora.settingsYAML.contains("  learning_rate: 0.01\n"))
    }

    /// The golden id of GridTests.idsReadAsTheirAxesAndAreStable, however a single learning
    /// rate is written; adding rates adds runs and leaves the existing ones' ids alone.
    @Test func oneLearningRateKeepsItsRunIdsAndAddingRatesKeepsThem() throws {
        let golden = "lora-r8-a16-kaiming-s0-ec87cf"
        #expect(try runs("  variants: [lora]\n  ranks: [8]").map(\.id) == [golden])
        #expect(try runs("  variants: [lora]\n  ranks: [8]", training: "  learning_rate: [1e-3]\n  steps: 100").map(\.id) == [golden])
        #expect(try runs("  variants: [{name: lora, learning_rate: [1e-3]}]\n  ranks: [8]").map(\.id) == [golden])
        let axis = try runs("  variants: [lora]\n  ranks: [8]", training: "  learning_rate: [1e-3, 3e-3]\n  steps: 100")
        #expect(axis.map(\.id).contains(golden) && axis.count == 2)
        // No axis, no column: the results of a one-rate manifest keep their columns.
        let single = try Manifest(yaml: "task: synthetic\ntraining: {learning_rate: [1e-3], steps: 10}\nsweep: {variants: [lora], ranks: [4]}\n",
                                  file: "m.yaml")
        #expect(!single.hasLearningRateAxis && single.axisColumns == RunSpec.axisColumns)
        #expect(single.runs[0].axisValues.count == RunSpec.axisColumns.count)
    }

    @Test func aVariantsOwnRanksAndRSLoRAMakeAnExtraArm() throws {
        let grid = try runs("  variants: [lora, {name: lora, label: rslora, use_rslora: true, ranks: [64]}]\n  ranks: [4, 8]\n  seeds: [0, 1]")
        #expect(grid.map { "\($0.variant.label)/\($0.rank)/\($0.useRSLoRA ?? false)" } == [
            "lora/4/false", "lora/4/false", "lora/8/false", "lora/8/false", "rslora/64/true", "rslora/64/true",
        ])
        #expect(grid.last!.scaling == Float(128 / 8.0), "rsLoRA scales by α/√r = 128/8")
    }

    func message(_ yaml: String) -> String {
        do {
            _ = try Manifest(yaml: yaml, file: "m.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func badLearningRateListsNameTheEntry() {
        let sweep = "sweep: {variants: [lora], ranks: [4]}\n"
        #expect(message("task: synthetic\ntraining: {learning_rate: [1e-3, 1e-3], steps: 10}\n" + sweep)
            == "m.yaml:2:34: training.learning_rate[1]: found learning rate 0.001 a second time; allowed: distinct values")
        #expect(message("task: synthetic\ntraining: {learning_rate: [1e-3, fast], steps: 10}\n" + sweep)
            == "m.yaml:2:34: training.learning_rate[1]: found 'fast'; allowed: a number > 0 (e.g. 1e-3)")
        #expect(message("task: synthetic\ntraining: {learning_rate: [], steps: 10}\n" + sweep)
            == "m.yaml:2:27: training.learning_rate: found an empty list; allowed: a number > 0 (e.g. 1e-3), or a list of them (an axis: each value its own run)")
        #expect(message("task: synthetic\ntraining: {learning_rate: 1e-3, steps: 10}\nsweep: {variants: [{name: lora, learning_rate: [1e-3, -1]}], ranks: [4]}\n")
            == "m.yaml:3:55: sweep.variants[0].learning_rate[1]: found '-1'; allowed: a number > 0 (e.g. 1e-3)")
    }

    @Test func aVariantsOwnAxesMustApplyToIt() {
        let training = "task: sst2\ntraining: {learning_rate: 1e-3, steps: 10}\n"
        #expect(message(training + "sweep: {variants: [{name: vera, use_rslora: true}], ranks: [4]}\n")
            == "m.yaml:3:45: sweep.variants[0].use_rslora: found 'true'; allowed: no use_rslora for vera: its scaling has no α/r")
        #expect(message(training + "sweep: {variants: [{name: head_only, ranks: [4]}], ranks: [4]}\n")
            == "m.yaml:3:45: sweep.variants[0].ranks: found a list; allowed: no ranks for head_only: it has no adapters")
        #expect(message(training + "sweep: {variants: [{name: lora, ranks: [4, 400]}], ranks: [4]}\n")
            == "m.yaml:3:44: sweep.variants[0].ranks[1]: found rank 400; allowed: ranks up to 384: module encoder.layer.0.attention.self.query is 384x384")
    }
}
