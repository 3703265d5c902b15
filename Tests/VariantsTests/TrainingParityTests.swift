import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every `train` case: y = fc2(tanh(fc1(x))) adapted on fc1 and fc2, trained with AdamW (LoRA+
/// groups, AdaLoRA's regulariser and allocator where the case says so), compared with peft's
/// trajectory: per-step losses, final adapter parameters, AdaLoRA's budgets and rank pattern.
@Suite struct TrainingParityTests {
    static let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
    /// VeRA, LoRA-FA and OLoRA cases are read by their own suites (VeRAParityTests, …).
    static let variants: Set<String> = ["lora", "loraplus", "dora", "adalora"]
    static let trainCases = Fixtures.cases(in: directory, kind: "train", variants: variants)

    @Test func fixturesArePresent() {
        #expect(!Self.trainCases.isEmpty, "no train cases under \(Self.directory.path)")
    }

    @Test(arguments: trainCases)
    func trajectoryMatchesPeft(_ folder: URL) throws {
        let label = folder.lastPathComponent
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let rtol = settings["rtol"] as! Double
        let variant = settings["variant"] as! String
        let r = settings["r"] as! Int
        let alpha = Float(settings["lora_alpha"] as! Double)
        let useRSLoRA = settings["use_rslora"] as? Bool ?? false
        let scaling = useRSLoRA ? alpha / Float(r).squareRoot() : alpha / Float(r)
        let adalora = settings["adalora"] as? [String: Any]

        // The layers are whatever `base.<name>.weight` the case holds, in name order (fc1, fc2).
        let layerNames = tensors.names.filter { $0.hasPrefix("base.") && $0.hasSuffix(".weight") }
            .map { String($0.dropFirst("base.".count).dropLast(".weight".count)) }.sorted()
        let useDoRA = variant == "dora" || settings["use_dora"] as? Bool == true
        var layers: [NamedAdapter] = []
        for name in layerNames {
            let base = try FrozenLinear(weight: tensors.matrix("base.\(name).weight"), bias: tensors.matrix("base.\(name).bias"))
            let adapter: any Adapter
            switch variant {
            case _ where useDoRA:
                adapter = try DoRA(base: base, a: tensors.matrix("init.\(name).lora_A.weight"),
                                   b: tensors.matrix("init.\(name).lora_B.weight"),
                                   magnitude: tensors.matrix("init.\(name).lora_magnitude_vector.weight"), scaling: scaling)
            case "lora", "loraplus":
                adapter = try LoRA(base: base, a: tensors.matrix("init.\(name).lora_A.weight"),
                                   b: tensors.matrix("init.\(name).lora_B.weight"), scaling: scaling)
            case "adalora":
                adapter = try AdaLoRALayer(base: base, a: tensors.matrix("init.\(name).lora_A"), b: tensors.matrix("init.\(name).lora_B"),
                                           e: tensors.matrix("init.\(name).lora_E"), alpha: alpha, initialRank: adalora?["init_r"] as? Int ?? r)
            default:
                Issue.record("\(label): unknown variant \(variant)")
                return
            }
            layers.append(NamedAdapter(name: name, adapter: adapter))
        }
        let model = AdaptedMLP(layers: layers)

        let optimizerSettings = settings["optimizer"] as! [String: Any]
        let betas = optimizerSettings["betas"] as! [Double]
        let learningRate = Float(optimizerSettings["lr"] as! Double), weightDecay = Float(optimizerSettings["weight_decay"] as! Double)
        let groups = (settings["loraplus_lr_ratio"] as? Double).map {
            LoRAPlus(ratio: $0).groups(for: model.parameters, learningRate: learningRate, weightDecay: weightDecay)
        } ?? [ParameterGroup(name: "all", parameters: model.parameters, learningRate: learningRate, weightDecay: weightDecay)]
        let optimizer = AdamW(groups: groups,
                              beta1: Float(betas[0]), beta2: Float(betas[1]), epsilon: Float(optimizerSettings["eps"] as! Double))
        let method: any AdaptationMethod
        if let adalora {
            let schedule = try AdaLoRASchedule(
                targetRank: adalora["target_r"] as! Int, initialWarmup: adalora["tinit"] as! Int,
                finalWarmup: adalora["tfinal"] as! Int, maskInterval: adalora["deltaT"] as! Int,
                beta1: Float(adalora["beta1"] as! Double), beta2: Float(adalora["beta2"] as! Double),
                orthogonalRegularization: Float(adalora["orth_reg_weight"] as! Double), totalSteps: adalora["total_step"] as! Int)
            method = try AdaLoRAAllocator(layers: layers, schedule: schedule)
        } else {
            method = FixedRankMethod(layers: layers)
        }

        let steps = settings["steps"] as! Int, batches = settings["batches"] as! Int, batchSize = settings["batch_size"] as! Int
        let inputs = try tensors.matrix("X"), targets = try tensors.matrix("Y")
        var losses: [Float] = [], regularizers: [Float] = [], budgets: [Float] = []
        for step in 0..<steps {
            let rows = (step % batches * batchSize)..<((step % batches + 1) * batchSize)
            let report = try trainingStep(step, optimizer: optimizer, method: method) {
                let (loss, gradient) = meanSquaredError(try model.forward(inputs.rowSlice(rows), training: true), targets.rowSlice(rows))
                try model.backward(gradient)
                return loss
            }
            losses.append(report.loss)
            regularizers.append(report.regularizer)
            if let allocator = method as? AdaLoRAAllocator { budgets.append(Float(allocator.budget)) }
        }

        var compared = [("losses", losses)]
        for layer in layers {
            for parameter in layer.adapter.parameters {
                let suffix = variant == "adalora" ? "" : ".weight"
                compared.append(("final.\(layer.name).\(parameter.name)\(suffix)", parameter.value.storage))
            }
        }
        var worst = (name: "", error: 0.0)
        for (name, got) in compared {
            let error = relativeError(got, try tensors.floats(name))
            #expect(error <= rtol, "\(label): \(name) differs from peft by \(error) (rtol \(rtol))")
            if error >= worst.error { worst = (name, error) }
        }
        print("peft parity \(label): worst relative error \(worst.error) in \(worst.name) (rtol \(rtol))")
        if let adalora, let allocator = method as? AdaLoRAAllocator {
            let orthogonalWeight = Float(adalora["orth_reg_weight"] as! Double)
            let error = relativeError(regularizers.map { $0 / orthogonalWeight }, try tensors.floats("orth_reg"))
            #expect(error <= rtol, "\(label): orth_reg differs from peft by \(error)")
            #expect(budgets == (try tensors.floats("budgets")), "\(label): budgets differ from peft's")
            let expected = adalora["final_rank_pattern"] as! [String: [Bool]]
            for (key, pattern) in expected {
                let module = key.hasSuffix(".lora_E") ? String(key.dropLast(".lora_E".count)) : key
                #expect(allocator.rankPattern[module] == pattern, "\(label): rank pattern of \(module) differs from peft's")
            }
        }
    }
}
