import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Expansion of sweep axes into runs: counts, order, ids, and which settings an id depends on.
@Suite struct GridTests {
    func runs(_ sweep: String, training: String = "  learning_rate: 1e-3\n  steps: 100") throws -> [RunSpec] {
        try Manifest(yaml: "task: synthetic\ntraining:\n\(training)\nsweep:\n\(sweep)\n", file: "m.yaml").runs
    }

    @Test func axesExpandAsACartesianProduct() throws {
        let grid = try runs("""
          variants: [lora, dora, adalora]
          ranks: [2, 4]
          seeds: [0, 1]
          alpha: [r, 2r]
          init: [kaiming, gaussian]
        """)
        // lora and dora: 2 ranks × 2 seeds × 2 alphas × 2 inits; AdaLoRA's peft layer has its own
        // initialisation, so the init axis does not multiply its runs.
        #expect(grid.count == 16 + 16 + 8)
        #expect(Set(grid.map(\.id)).count == grid.count)
        #expect(grid.filter { $0.variant.label == "adalora-peft" }.allSatisfy { $0.initialization == nil })
    }

    @Test func seedsVaryFastestSoAConfigurationsSeedsRunTogether() throws {
        let grid = try runs("  variants: [lora, dora]\n  ranks: [4, 8]\n  seeds: [0, 1, 2]")
        #expect(grid.map { "\($0.variant.label)/\($0.rank)/\($0.seed)" } == [
            "lora/4/0", "lora/4/1", "lora/4/2", "lora/8/0", "lora/8/1", "lora/8/2",
            "dora/4/0", "dora/4/1", "dora/4/2", "dora/8/0", "dora/8/1", "dora/8/2",
        ])
    }

    @Test func idsReadAsTheirAxesAndAreStable() throws {
        let grid = try runs("  variants: [lora, adalora]\n  ranks: [8]")
        // A golden value: if it changes, existing results folders no longer resume.
        #expect(grid.map(\.id) == ["lora-r8-a16-kaiming-s0-ec87cf", "adalora-peft-r8-a16-s0-85ac52"])
    }

    @Test func idsDependOnTheRunsSettingsOnly() throws {
        let base = try runs("  variants: [lora]\n  ranks: [8]")[0].id
        // Adding axis values or variants adds runs but leaves existing ids alone.
        #expect(try runs("  variants: [lora, dora]\n  ranks: [4, 8]\n  seeds: [0, 5]").map(\.id).contains(base))
        // Anything that changes the numbers changes the id.
        let otherRate = try runs("  variants: [lora]\n  ranks: [8]", training: "  learning_rate: 2e-3\n  steps: 100")[0].id
        let otherDropout = try runs("  variants: [lora]\n  ranks: [8]\n  dropout: 0.1")[0].id
        #expect(Set([base, otherRate, otherDropout]).count == 3)
        #expect(otherRate.hasPrefix("lora-r8-a16-kaiming-s0-"))
    }

    @Test func rulesResolvePerRun() throws {
        let grid = try runs("  variants: [{name: adalora, mode: peft, init_r: 1.5r, target_r: r}]\n  ranks: [4, 16]\n  alpha: 2r")
        #expect(grid.map(\.alpha) == [8, 32])
        #expect(grid.map(\.variant.adapterRank) == [6, 24])
        #expect(grid[0].settingsYAML.contains("init_r: 6\n  target_r: 4\n  tinit: 10\n  tfinal: 20\n"))
        #expect(grid[0].axisValues == [grid[0].id, "adalora-peft", "4", "2r", "0", "n/a", "fc1+fc2", "0", "n/a"])
    }

    @Test func settingsYAMLHoldsEveryResolvedSetting() throws {
        let run = try runs("  variants: [{name: adalora, mode: svd-prune}]\n  ranks: [8]")[0]
        #expect(run.settingsYAML == """
        run_id: \(run.id)
        experiment: m
        task:
          name: synthetic
          seed: 0
          input_dim: 128
          hidden_dim: 128
          layers: 2
          output_dim: 128
          true_rank:
            fc1: 8
            fc2: 8
          delta_scale: 0.5
          noise: 0.05
          train_size: 2048
          eval_size: 512
        model: synthetic
        training:
          learning_rate: 0.001
          steps: 100
          batch_size: 64
          eval_interval: 10
          log_interval: 10
          weight_decay: 0
          warmup_steps: 0
          schedule: constant
          save_every: 0
          blas_threads: 1
        variant:
          label: adalora-svd
          name: adalora
          adapter: lora
          learning_rate: 0.001
          mode: svd-prune
          interval: 5
          energy_threshold: 0.95
          min_rank: 1
          max_rank: 8
          start_step: 20
          stop_step: 70
          optimizer_state: reset
        rank: 8
        alpha: 16
        alpha_rule: 2r
        seed: 0
        init: kaiming
        target_modules: [fc1, fc2]
        dropout: 0
        use_rslora: false

        """)
    }
}
