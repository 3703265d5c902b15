import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Parsing and validation of manifests: every error names the file, line, key path, what was
/// found and what is allowed, and the full message is checked so that a regression in wording
/// or location shows up here.
@Suite struct ManifestTests {
    static let valid = """
    task: synthetic
    training:
      learning_rate: 1e-3
      steps: 100
    sweep:
      variants: [lora]
      ranks: [4, 8]

    """

    /// The error `yaml` fails with, as the user sees it.
    func message(_ yaml: String) -> String {
        do {
            _ = try Manifest(yaml: yaml, file: "m.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func unknownKeyNamesLineAndSuggestsTheClosestKey() {
        let yaml = Self.valid.replacingOccurrences(of: "  steps: 100", with: "  stesp: 100")
        #expect(message(yaml) == "m.yaml:4:3: training.stesp: found an unknown key 'stesp'; allowed: learning_rate, steps, "
            + "batch_size, eval_interval, log_interval, weight_decay, warmup_steps, schedule, save_every, blas_threads, eval_at_start (did you mean 'steps'?)")
    }

    @Test func unknownKeyInAVariantSuggestsTheKeyItAbbreviates() {
        let yaml = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [lora, {name: adalora, mode: svd-prune, energy: 0.9}]")
        #expect(message(yaml) == "m.yaml:6:53: sweep.variants[1].energy: found an unknown key 'energy'; allowed: name, label, "
            + "learning_rate, init, ranks, use_rslora, mode, init_r, target_r, tinit, tfinal, deltaT, beta1, beta2, orth_reg_weight, interval, energy_threshold, "
            + "min_rank, max_rank, start_step, stop_step, optimizer_state, dora, loraplus, lorafa (did you mean 'energy_threshold'?)")
    }

    @Test func anExperimentNameFromTheFileNameObeysTheKeysRule() throws {
        let yaml = "task: synthetic\ntraining: {learning_rate: 1e-3, steps: 10}\nsweep: {variants: [lora], ranks: [4]}\n"
        #expect(try Manifest(yaml: yaml, file: "dir/rank-sweep_2.yaml").experiment == "rank-sweep_2")
        do {
            _ = try Manifest(yaml: yaml, file: "dir/my sweep (copy).yaml")
            Issue.record("a file name with spaces and parentheses named the experiment")
        } catch {
            #expect("\(error)" == "dir/my sweep (copy).yaml: experiment: found no key, and the file name gives 'my sweep (copy)'; "
                + "allowed: a name of letters, digits, '.', '_' and '-' (it names the results directory); set `experiment:` or rename the file")
        }
        #expect(try Manifest(yaml: "experiment: fine\n" + yaml, file: "dir/my sweep (copy).yaml").experiment == "fine")
    }

    @Test func aLabelThatWouldNameAParentFolderIsRefused() {
        let yaml = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [{name: lora, label: ..}]")
        #expect(message(yaml).contains("sweep.variants[0].label: found '..'; allowed: a label of letters, digits"))
    }

    @Test func aKeyOfTheOtherAdaLoRAModeIsRefusedWithTheReason() {
        let yaml = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [{name: adalora, mode: svd-prune, init_r: 12}]")
        #expect(message(yaml) == "m.yaml:6:55: sweep.variants[0].init_r: found 'init_r'; allowed: not 'init_r' here: it is a key of mode peft")
    }

    @Test func unknownTopLevelKey() {
        #expect(message("tasks: synthetic\n") == "m.yaml:1:1: tasks: found an unknown key 'tasks'; allowed: experiment, description, "
            + "task, model, training, sweep, selection (did you mean 'task'?)")
    }

    @Test func badType() {
        let yaml = Self.valid.replacingOccurrences(of: "steps: 100", with: "steps: ten")
        #expect(message(yaml) == "m.yaml:4:10: training.steps: found 'ten'; allowed: an integer ≥ 1")
        let quoted = Self.valid.replacingOccurrences(of: "learning_rate: 1e-3", with: "learning_rate: \"1e-3\"")
        #expect(message(quoted) == "m.yaml:3:18: training.learning_rate: found the quoted string \"1e-3\"; allowed: a number > 0 (e.g. 1e-3)")
        let list = Self.valid.replacingOccurrences(of: "ranks: [4, 8]", with: "ranks: {r: 4}")
        #expect(message(list) == "m.yaml:7:10: sweep.ranks: found a mapping; allowed: a list of integers ≥ 1, e.g. [4, 8, 16, 64]")
    }

    @Test func badValue() {
        let dropout = Self.valid + "  dropout: 1.5\n"
        #expect(message(dropout) == "m.yaml:8:12: sweep.dropout: found '1.5'; allowed: a number in [0, 1)")
        let initialization = Self.valid + "  init: [kaiming, pisa]\n"
        #expect(message(initialization) == "m.yaml:8:19: sweep.init[1]: found 'pisa'; allowed: kaiming, gaussian, pissa, olora, "
            + "zero_a, both_gaussian (did you mean 'pissa'?)")
        let mode = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [{name: adalora, mode: svd}]")
        #expect(message(mode) == "m.yaml:6:36: sweep.variants[0].mode: found 'svd'; allowed: peft, svd-prune (did you mean 'svd-prune'?)")
        let module = Self.valid + "  target_modules: [fc1, fc3]\n"
        #expect(message(module) == "m.yaml:8:25: sweep.target_modules[1]: found 'fc3'; allowed: fc1, fc2")
    }

    @Test func missingRequiredKeyIsReportedAtItsMapping() {
        let yaml = Self.valid.replacingOccurrences(of: "  ranks: [4, 8]\n", with: "")
        #expect(message(yaml) == "m.yaml:5:1: sweep.ranks: found nothing (the required key 'ranks' is missing); "
            + "allowed: a list of integers ≥ 1, e.g. [4, 8, 16, 64]")
        #expect(message("task: synthetic\n") == "m.yaml:1:1: training: found nothing (the required key 'training' is missing); "
            + "allowed: a mapping with keys learning_rate, steps, batch_size, eval_interval, log_interval, weight_decay, "
            + "warmup_steps, schedule, save_every, blas_threads, eval_at_start")
    }

    @Test func rankLargerThanAModuleAllows() {
        let yaml = Self.valid.replacingOccurrences(of: "task: synthetic", with: "task: {name: synthetic, output_dim: 16}")
            .replacingOccurrences(of: "ranks: [4, 8]", with: "ranks: [4, 32]")
        #expect(message(yaml) == "m.yaml:7:14: sweep.ranks[1]: found rank 32; allowed: ranks up to 16: module fc2 is 16x128")
        let adalora = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [adalora]")
            .replacingOccurrences(of: "ranks: [4, 8]", with: "ranks: [4, 100]")
        #expect(message(adalora) == "m.yaml:7:14: sweep.ranks[1]: found rank 100 (adalora-peft builds rank-150 adapters); "
            + "allowed: ranks up to 128: module fc1 is 128x128")
    }

    @Test func settingsThatDoNotFitTheRunNameTheVariant() {
        let yaml = Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [{name: adalora, mode: peft, tinit: 90}]")
        #expect(message(yaml) == "m.yaml:6:14: sweep.variants[0]: found adalora tinit = 90 for a run of rank 4 and 100 steps; "
            + "allowed: tinit must be < total_step − tfinal = 80")
    }

    @Test func repeatedValuesAndLabelsAreRejected() {
        #expect(message(Self.valid.replacingOccurrences(of: "ranks: [4, 8]", with: "ranks: [4, 4]"))
            == "m.yaml:7:14: sweep.ranks[1]: found rank 4 a second time; allowed: distinct values")
        #expect(message(Self.valid.replacingOccurrences(of: "variants: [lora]", with: "variants: [lora, lora]"))
            == "m.yaml:6:20: sweep.variants[1]: found a second variant labelled 'lora' (the first is variants[0]); "
            + "allowed: distinct variant labels; add `label:` to tell them apart")
    }

    @Test func tasksAndModelsAreCheckedAgainstEachOther() {
        #expect(message(Self.valid.replacingOccurrences(of: "task: synthetic", with: "task: sst3"))
            == "m.yaml:1:7: task: found 'sst3'; allowed: synthetic, sst2, rte, cola, mrpc, stsb, completion (did you mean 'sst2'?)")
        #expect(message("model: minilm\n" + Self.valid)
            == "m.yaml:1:8: model: found 'minilm'; allowed: for task synthetic: synthetic")
        #expect(message(Self.valid.replacingOccurrences(of: "task: synthetic", with: "task: sst2\nmodel: synthetic"))
            == "m.yaml:2:8: model: found 'synthetic'; allowed: for task sst2: minilm, smollm2")
    }

    @Test func syntaxErrorsKeepTheirLine() {
        let yaml = Self.valid.replacingOccurrences(of: "ranks: [4, 8]", with: "ranks: [4, 8")
        #expect(message(yaml).hasPrefix("m.yaml:8:1: (document): found invalid YAML ("))
        #expect(message("") == "m.yaml: (document): found an empty file; allowed: a YAML mapping with keys experiment, "
            + "description, task, model, training, sweep, selection")
    }

    @Test func exponentNotationIsANumber() throws {
        let manifest = try Manifest(yaml: Self.valid.replacingOccurrences(of: "learning_rate: 1e-3", with: "learning_rate: 1e-5")
            .replacingOccurrences(of: "steps: 100", with: "steps: 1e3"), file: "m.yaml")
        #expect(manifest.training.learningRate == 1e-5)
        #expect(manifest.training.steps == 1000)
    }

    @Test func defaultsAreFilledIn() throws {
        let manifest = try Manifest(yaml: Self.valid, file: "Experiments/my-sweep.yaml")
        #expect(manifest.experiment == "my-sweep")
        #expect(manifest.model == "synthetic")
        #expect(manifest.training.batchSize == 64)
        #expect(manifest.training.evalInterval == 10)
        #expect(manifest.training.blasThreads == 1)
        #expect(manifest.sweep.alphas == [.timesRank(2)])
        #expect(manifest.sweep.seeds == [0])
        #expect(manifest.sweep.inits == [.kaiming])
        #expect(manifest.sweep.targetModules == [["fc1", "fc2"]])
        #expect(manifest.task.modules.map(\.name) == ["fc1", "fc2"])
    }

    @Test func composedVariantsGetDescriptiveLabels() throws {
        let yaml = Self.valid.replacingOccurrences(of: "variants: [lora]", with: """
        variants:
            - lora
            - loraplus
            - {name: dora, loraplus: {lr_ratio: 8}}
            - adalora
            - {name: adalora, mode: svd-prune, dora: true}
            - {name: lora, label: lora-slow, learning_rate: 1e-4}
            - {name: dora, lorafa: true}
            - {name: vera, d_initial: 0.2}
        """)
        let variants = try Manifest(yaml: yaml, file: "m.yaml").sweep.variants
        #expect(variants.map(\.label) == ["lora", "loraplus", "dora-loraplus", "adalora-peft", "adalora-svd-dora", "lora-slow",
                                           "dora-lorafa", "vera"])
        #expect(variants.map { type(of: $0.variant).name } == ["lora", "lora", "dora", "adalora", "adalora", "lora", "dora", "vera"])
        #expect(variants.map { ($0.policy as? LoRAPlus)?.ratio } == [nil, 16, 8, nil, nil, nil, nil, nil])
        #expect(variants.map { $0.policy.map { type(of: $0).name } } == [nil, "loraplus", "loraplus", nil, nil, nil, "lorafa", nil])
        #expect((variants[7].variant as? VeRAVariant)?.dInitial == 0.2)
        #expect(variants[5].learningRate == 1e-4)
    }
}
