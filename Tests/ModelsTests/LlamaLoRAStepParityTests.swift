import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
@testable import LoRABenchModels
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// One LoRA training step on SmolLM2-135M-Instruct against PyTorch + peft (the `lora-step` cases
/// of the smollm2 fixtures, discovered by case.json `kind` under `SMOLLM2_FIXTURES_DIR`, else
/// Tests/Fixtures/smollm2): the adapter built from case.json's `peft_config` with the fixture's
/// `init.*` factors, then `loss_before`, every `grad.*`, one torch AdamW step (`final.*`) and
/// `loss_after`, each within case.json's rtol per prefix.
@Suite struct LlamaLoRAStepParityTests {
    static let loraStepCases = SmolLM2.cases(kind: "lora-step")


    /// A case's settings, tensors and the torch AdamW it names.
    private struct Case {
        let name: String
        let settings: [String: Any]
        let tensors: SafetensorsFile
        let rtol: [String: Double]

        init(_ folder: URL) throws {
            name = folder.lastPathComponent
            settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
            tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
            rtol = try #require(settings["rtol"] as? [String: Double], "\(name)/case.json: no rtol table")
        }

        func tolerance(_ key: String) throws -> Double { try #require(rtol[key], "\(name)/case.json: no rtol.\(key)") }

        /// The fixture's tensor `prefix.<peft name>` for one adapter parameter, e.g.
        /// `init.model.layers.0.self_attn.q_proj.lora_A.weight` (peft's parameter without the adapter name).
        func tensor(_ prefix: String, module: String, parameter: Parameter) throws -> [Float] {
            try tensors.floats("\(prefix).\(module).\(parameter.name).weight")
        }

        /// torch.optim.AdamW over `parameters` with case.json's lr, betas, eps and weight decay.
        func optimizer(over parameters: [Parameter]) throws -> AdamW {
            let settings = try #require(self.settings["optimizer"] as? [String: Any], "\(name)/case.json: no optimizer")
            let betas = try #require(settings["betas"] as? [Double], "\(name)/case.json: no optimizer.betas")
            let (lr, eps, decay) = try (#require(settings["lr"] as? Double), #require(settings["eps"] as? Double),
                                        #require(settings["weight_decay"] as? Double))
            return AdamW(groups: [ParameterGroup(name: "adapters", parameters: parameters, learningRate: Float(lr), weightDecay: Float(decay))],
                         beta1: Float(betas[0]), beta2: Float(betas[1]), epsilon: Float(eps), options: .torch)
        }
    }

    /// The worst relative error seen per prefix, for the report line.
    private struct Worst {
        private(set) var errors: [(prefix: String, tensor: String, error: Double)] = []

        mutating func record(_ prefix: String, _ tensor: String, _ error: Double) {
            if let index = errors.firstIndex(where: { $0.prefix == prefix }) {
                if error > errors[index].error { errors[index] = (prefix, tensor, error) }
            } else {
                errors.append((prefix, tensor, error))
            }
        }

        var summary: String { errors.map { "\($0.prefix) \(String(format: "%.2e", $0.error)) (\($0.tensor))" }.joined(separator: ", ") }
    }

    @Test func loraStepCasesArePresent() {
        #expect(!Self.loraStepCases.isEmpty, "no lora-step case in \(SmolLM2.fixturesDirectory.path)")
    }

    /// The optimizer alone: one AdamW step from `init.*` with the fixture's `grad.*` gives `final.*`.
    @Test(arguments: loraStepCases)
    func adamWStepOnTheFixtureGradientsGivesFinal(_ folder: URL) throws {
        let fixture = try Case(folder)
        let rtol = try fixture.tolerance("final_from_fixture_grads")
        let names = fixture.tensors.tensors.keys.filter { $0.hasPrefix("init.") }.map { String($0.dropFirst("init.".count)) }.sorted()
        try #require(!names.isEmpty, "\(fixture.name): no init.* tensor")
        let parameters = try names.map { name in
            let shape = try fixture.tensors.info("init.\(name)").shape
            let parameter = Parameter(name, role: .weight, value: Matrix(rows: shape[0], cols: shape[1], storage: try fixture.tensors.floats("init.\(name)")))
            parameter.grad = Matrix(rows: shape[0], cols: shape[1], storage: try fixture.tensors.floats("grad.\(name)"))
            return parameter
        }
        try fixture.optimizer(over: parameters).step()
        var worst = Worst()
        for (name, parameter) in zip(names, parameters) {
            let error = relativeError(parameter.value.storage, try fixture.tensors.floats("final.\(name)"))
            worst.record("final", name, error)
            #expect(error <= rtol, "\(fixture.name): final.\(name) from the fixture's gradient differs by \(error) (rtol \(rtol))")
        }
        print("\(fixture.name): AdamW on the fixture's gradients, worst relative error \(worst.summary)")
    }

    /// The whole step through the decoder: loss, backward, AdamW, loss again.
    @Test(arguments: loraStepCases)
    func loraStepMatchesPeft(_ folder: URL) throws {
        let fixture = try Case(folder)
        let peft = try #require(fixture.settings["peft_config"] as? [String: Any], "\(fixture.name)/case.json: no peft_config")
        let rank = try #require(peft["r"] as? Int), alpha = try #require(peft["lora_alpha"] as? Double)
        let useRSLoRA = peft["use_rslora"] as? Bool ?? false, useDoRA = peft["use_dora"] as? Bool ?? false
        let targets = try #require(peft["target_modules"] as? [String], "\(fixture.name)/case.json: no peft_config.target_modules")
        let layerPrefixes = (peft["layers_to_transform"] as? [Int]).map { $0.map { "model.layers.\($0)." } }
        let adapterConfig = AdapterConfig(rank: rank, alpha: Float(alpha), useRSLoRA: useRSLoRA,
                                          dropout: Float(peft["lora_dropout"] as? Double ?? 0))

        let decoder = try LlamaDecoder(weights: SmolLM2.weightsOrSkip()) { module, base in
            guard targets.contains(where: { module.name.hasSuffix(".\($0)") }),
                  layerPrefixes?.contains(where: module.name.hasPrefix) ?? true else { return nil }
            let layer = try makeLayer(useDoRA ? "dora" : "lora", base: base, config: adapterConfig)
            for parameter in layer.parameters {
                parameter.value = Matrix(rows: parameter.value.rows, cols: parameter.value.cols,
                                         storage: try fixture.tensor("init", module: module.name, parameter: parameter))
            }
            return layer
        }
        let adapterTensorCount = decoder.adapters.reduce(0) { $0 + $1.adapter.parameters.count }
        #expect(adapterTensorCount == fixture.tensors.tensors.keys.filter { $0.hasPrefix("init.") }.count,
                "\(fixture.name): the adapter has \(adapterTensorCount) tensors, the fixture's init.* differ in number")

        let inputIDs = try fixture.tensors.ints("input_ids"), mask = try fixture.tensors.ints("attention_mask")
        let labels = try fixture.tensors.ints("labels"), batchSize = try fixture.tensors.info("input_ids").shape[0]
        var worst = Worst()
        func check(_ prefix: String, _ tensor: String, got: [Float], want: [Float], rtol: Double) {
            let error = relativeError(got, want)
            worst.record(prefix, tensor, error)
            #expect(error <= rtol, "\(fixture.name): \(prefix).\(tensor) differs by \(error) (rtol \(rtol))")
        }

        let clock = ContinuousClock(), start = clock.now
        let lossBefore = try decoder.loss(inputIDs: inputIDs, attentionMask: mask, labels: labels, batchSize: batchSize)
        try decoder.backward()
        let elapsed = clock.now - start
        check("loss_before", "", got: [lossBefore], want: try fixture.tensors.floats("loss_before"), rtol: try fixture.tolerance("loss_before"))
        for (module, adapter) in decoder.adapters {
            for parameter in adapter.parameters {
                check("grad", "\(module).\(parameter.name)", got: parameter.grad.storage,
                      want: try fixture.tensor("grad", module: module, parameter: parameter), rtol: try fixture.tolerance("grad"))
            }
        }

        try fixture.optimizer(over: decoder.adapters.flatMap(\.adapter.parameters)).step()
        for (module, adapter) in decoder.adapters {
            for parameter in adapter.parameters {
                check("final", "\(module).\(parameter.name)", got: parameter.value.storage,
                      want: try fixture.tensor("final", module: module, parameter: parameter), rtol: try fixture.tolerance("final_end_to_end"))
            }
        }
        let lossAfter = try decoder.loss(inputIDs: inputIDs, attentionMask: mask, labels: labels, batchSize: batchSize)
        check("loss_after", "", got: [lossAfter], want: try fixture.tensors.floats("loss_after"), rtol: try fixture.tolerance("loss_after"))
        print("\(fixture.name): worst relative error per prefix: \(worst.summary); loss and backward of [\(batchSize), \(inputIDs.count / batchSize)] in \(elapsed)")
    }
}
