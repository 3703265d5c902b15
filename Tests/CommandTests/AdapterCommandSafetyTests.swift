import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchData
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// `infer` and `analyze` run as a user would with hostile or careless inputs: names that would
/// leave the output folder, the user's own index.html, texts that forge output rows, long and
/// unreadable texts files, and a QLoRA adapter trained on MiniLM, whose base must come back as
/// it was in training.
@Suite struct AdapterCommandSafetyTests {
    static func fixture(_ name: String) -> String { peftCheckpointFixture(name).path }

    /// The lora-qv fixture with a trained head (peft's `modules_to_save: classifier`), so that
    /// `infer` prints a row per text.
    static func adapterWithHead(in directory: String) throws -> String {
        let folder = "\(directory)/with-head"
        try FileManager.default.copyItem(atPath: fixture("lora-qv"), toPath: folder)
        let weights = "\(folder)/\(PeftCheckpoint.weightsFile)"
        let file = try SafetensorsFile(path: weights)
        var tensors: [String: TensorToWrite] = [:]
        for name in file.names { tensors[name] = TensorToWrite(floats: try file.floats(name), shape: file.tensors[name]!.shape) }
        tensors[PeftCheckpoint.keyPrefix + "classifier.weight"] = TensorToWrite(floats: (0..<768).map { Float($0 % 7) * 0.01 - 0.03 }, shape: [2, 384])
        tensors[PeftCheckpoint.keyPrefix + "classifier.bias"] = TensorToWrite(floats: [0.1, -0.1], shape: [2])
        try Safetensors.write(tensors, to: weights, metadata: file.metadata)
        let configURL = URL(fileURLWithPath: "\(folder)/\(PeftCheckpoint.configFile)")
        var config = try Fixtures.json(configURL)
        config["modules_to_save"] = ["classifier"]
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        return folder
    }

    static func output(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let (output, errors) = (Pipe(), Pipe())
        let process = try LorabenchProcess.start(arguments, output: output, errors: errors)
        // Both pipes are drained at once: a child blocked on a full one would never exit.
        nonisolated(unsafe) var errorData = Data()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorData = errors.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// Runs lorabench with its output discarded and returns its exit status and its peak resident
    /// memory in kilobytes, from `wait4` for exactly this child (nothing else the tests run counts).
    static func peakMemory(_ arguments: [String]) throws -> (status: Int32, kilobytes: Int) {
        let executable = try LorabenchProcess.executable.path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw FileOperationError(operation: "spawn", path: executable, errno: spawned) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), usage.ru_maxrss)
    }

    /// `analyze spectrum --name '../../victim' --out DIR` wrote victim.csv two folders above DIR.
    @Test func aSpectrumNameCannotLeaveTheOutputFolder() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = "\(directory)/a/b"
        let result = try LorabenchProcess.failure(["analyze", "spectrum", Self.fixture("lora-qv"), "--name", "../../victim", "--out", out])
        #expect(result.status != 0)
        #expect(result.errors.contains("--name '../../victim' cannot name files; allowed: letters, digits, '.', '_' and '-' (not '.' or '..')"),
                "\(result.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "nothing is written anywhere")
    }

    /// `analyze spectrum A --out DIR` overwrote the user's own DIR/index.html without --force.
    @Test func analyzeKeepsTheUsersFilesUnlessForced() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let index = "\(directory)/index.html"
        let mine = "<html><body>my own page</body></html>\n"
        try mine.write(toFile: index, atomically: true, encoding: .utf8)
        let spectrum = ["analyze", "spectrum", Self.fixture("lora-qv"), "--out", directory]

        let refused = try LorabenchProcess.failure(spectrum)
        #expect(refused.status != 0)
        #expect(refused.errors.contains("\(index): the file exists; pass --force to overwrite it, or choose another path"), "\(refused.errors)")
        #expect(try String(contentsOfFile: index, encoding: .utf8) == mine)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["index.html"], "a refusal writes nothing")

        #expect(try LorabenchProcess.run(spectrum + ["--force"]) == 0)
        #expect(try String(contentsOfFile: index, encoding: .utf8).contains("delta-weight-spectra.svg"))
        // The index is now analyze's own and is rebuilt by the next analysis; the files of this one are kept.
        #expect(try LorabenchProcess.run(["analyze", "spectrum", Self.fixture("lora-qv"), "--name", "second", "--out", directory]) == 0)
        #expect(try String(contentsOfFile: index, encoding: .utf8).contains("second-spectra.svg"))
        let again = try LorabenchProcess.failure(spectrum)
        #expect(again.status != 0)
        #expect(again.errors.contains("\(directory)/delta-weight.csv: the file exists; pass --force to overwrite it"), "\(again.errors)")
    }

    /// `infer --text $'good\n1\t9.9 9.9\tfake row'` printed a second, forged row.
    @Test func aTextCannotForgeInferOutputRows() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let adapter = try Self.adapterWithHead(in: directory)
        let result = try Self.output(["infer", adapter, "--text", "good\n1\t9.9 9.9\tfake row", "--text", "fine"])
        #expect(result.status == 0, "\(result.errors)")
        let rows = result.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(rows.count == 2, "\(result.output)")
        #expect(rows.allSatisfy { $0.split(separator: "\t", omittingEmptySubsequences: false).count == 3 }, "\(result.output)")
        #expect(rows.first?.hasSuffix("\t" + #"good\n1\t9.9 9.9\tfake row"#) == true, "\(result.output)")
    }

    /// --texts-file errors were Foundation's text ("The file “x” couldn’t be opened …") without the operation.
    @Test func anUnreadableTextsFileNamesThePathAndTheOperation() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = try LorabenchProcess.failure(["infer", Self.fixture("lora-qv"), "--texts-file", "\(directory)/missing.txt"])
        #expect(missing.status != 0)
        #expect(missing.errors.contains("\(directory)/missing.txt: cannot open the texts file: No such file or directory"), "\(missing.errors)")
        let folder = try LorabenchProcess.failure(["infer", Self.fixture("lora-qv"), "--texts-file", directory])
        #expect(folder.errors.contains("\(directory): cannot read the texts file: Is a directory"), "\(folder.errors)")
        try Data([0x6F, 0x6B, 0x0A, 0xC3, 0x28, 0x0A]).write(to: URL(fileURLWithPath: "\(directory)/latin1.txt"))
        let invalid = try LorabenchProcess.failure(["infer", Self.fixture("lora-qv"), "--texts-file", "\(directory)/latin1.txt"])
        #expect(invalid.errors.contains("\(directory)/latin1.txt: cannot read the texts file: line 2 is not valid UTF-8 text"), "\(invalid.errors)")
    }

    /// `infer --texts-file` ran every line as one batch: 2,000 lines used 4.7 GB. Batched, 400
    /// lines need no more memory than one batch of 32 (the default `--batch-size`, so both runs
    /// have the same shapes and threads); in one batch they needed 400 MB more.
    @Test func inferMemoryDoesNotGrowWithTheTextsFile() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lines = (0..<400).map { "a short line of text, number \($0) of many" }
        let texts = "\(directory)/texts.txt", oneBatch = "\(directory)/one-batch.txt"
        try lines.joined(separator: "\n").write(toFile: texts, atomically: true, encoding: .utf8)
        try lines.prefix(32).joined(separator: "\n").write(toFile: oneBatch, atomically: true, encoding: .utf8)
        let one = try Self.peakMemory(["infer", Self.fixture("lora-qv"), "--texts-file", oneBatch])
        let many = try Self.peakMemory(["infer", Self.fixture("lora-qv"), "--texts-file", texts])
        #expect(one.status == 0 && many.status == 0)
        #expect(many.kilobytes < one.kilobytes + 100_000, "one batch: \(one.kilobytes) KB, 400 texts: \(many.kilobytes) KB")

        // The output file streams too, and holds what one batch of all texts gives.
        let out = "\(directory)/outputs.safetensors"
        #expect(try LorabenchProcess.run(["infer", Self.fixture("lora-qv"), "--texts-file", texts, "--batch-size", "7", "--out", out]) == 0)
        let outputs = try SafetensorsFile(path: out)
        let adapted = try adaptedFixture("lora-qv")
        let tokenizer = try WordPieceTokenizer(vocabularyPath: minilmFilesOrSkip().vocabularyPath)
        let length = try outputs.info("input_ids").shape[1]
        let whole = try adapted.infer(Array(lines.prefix(20)), tokenizer: tokenizer, maxLength: 128, paddedLength: length)
        #expect(try outputs.info("last_hidden_state").shape == [400, length, 384])
        #expect(try Array(outputs.ints("input_ids").prefix(20 * length)) == whole.batch.inputIds)
        #expect(relativeError(Array(try outputs.floats("last_hidden_state").prefix(20 * length * 384)), whole.hiddenStates.storage) < 1e-5)
    }

    /// A QLoRA adapter trained on MiniLM (sst2) did not record its base: `infer` used the float32
    /// one without a word (0.5283 against the run's 0.53295) and `--base nf4` warned falsely.
    @Test func aQLoRARunOnMiniLMRecordsItsBaseAndInferReproducesItsPredictions() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: """
            experiment: tiny-sst2-nf4
            task: {name: sst2, data_dir: '\(Fixtures.dataDirectory)', max_train_examples: 32, eval_examples: 8, max_length: 8}
            model: {name: minilm, base: nf4}
            training: {learning_rate: 1e-2, steps: 2, batch_size: 4, eval_interval: 2, log_interval: 1}
            sweep:
              variants: [lora]
              ranks: [4]
              target_modules: [query, value]
            """, file: "m.yaml")
        #expect(try ExperimentSupport.run(manifest, into: directory).map(\.status) == [.completed])
        let layout = ResultsLayout(root: "\(directory)/results")
        let run = manifest.runs[0]
        let adapter = layout.peftAdapterDirectory(run.id)
        #expect(try SafetensorsFile(path: "\(adapter)/\(PeftCheckpoint.weightsFile)").metadata[PeftCheckpoint.baseWeightsKey] == "nf4")

        let dev = try GLUE.load(.sst2, split: .dev, from: Fixtures.dataDirectory, maxExamples: 8)
        let texts = "\(directory)/dev.txt"
        try dev.map(\.text).joined(separator: "\n").write(toFile: texts, atomically: true, encoding: .utf8)
        let out = "\(directory)/outputs.safetensors"
        let result = try Self.output(["infer", adapter, "--texts-file", texts, "--max-length", "8", "--out", out])
        #expect(result.status == 0 && result.errors.isEmpty, "\(result.errors)")
        let logits = try SafetensorsFile(path: out).floats("logits")
        let predictions = try CSVTable(contentsOf: layout.predictionsFile(run.id), producer: "test")
        #expect(predictions.records.count == dev.count)
        for (index, record) in predictions.records.map(\.fields).enumerated() {
            let (first, second) = (Double(logits[2 * index]), Double(logits[2 * index + 1]))
            let predicted = second > first ? 1 : 0
            let probability = 1 / (1 + exp(-abs(second - first)))
            #expect(record[0] == String(index) && record[2] == String(predicted), "example \(index): \(record)")
            #expect(abs(probability - Double(record[3])!) < 1e-5, "example \(index): infer gives \(probability), the run \(record[3])")
        }
        // Asked for the base it was trained on, infer has nothing to warn about.
        let asked = try Self.output(["infer", adapter, "--text", dev[0].text, "--max-length", "8", "--base", "nf4"])
        #expect(asked.status == 0 && asked.errors.isEmpty, "\(asked.errors)")
    }
}
