import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
@testable import LoRABenchData
@testable import LoRABenchModels
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// The `completion` task: its JSONL files and their errors, the manifest keys, truncation and
/// refusal, the chat setting, the exact match, and resuming (on a scripted stand-in model, no
/// download needed); then on SmolLM2 itself the encoding, the loss on completion tokens only,
/// and a tiny sweep end to end that resumes to the numbers of an uninterrupted one.
@Suite struct CompletionTaskTests {
    /// Writes `lines` (one string per line) as a JSONL file in `directory`.
    static func jsonl(_ lines: [String], in directory: String, name: String) throws -> String {
        let path = "\(directory)/\(name)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func text(_ prompt: String, _ completion: String) -> String {
        let object = ["prompt": prompt, "completion": completion]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func manifest(train: String, eval: String, extraTask: String = "", training: String = "steps: 2, batch_size: 2",
                         model: String = "smollm2") throws -> Manifest {
        try Manifest(yaml: """
        experiment: tiny-completion
        task: {name: completion, train: '\(train)', eval: '\(eval)'\(extraTask)}
        model: \(model)
        training: {learning_rate: 1e-3, eval_interval: 2, log_interval: 1, \(training)}
        sweep: {variants: [lora], ranks: [4], target_modules: [q_proj, v_proj]}
        """, file: "m.yaml")
    }

    /// The task on the scripted stand-in model.
    static func scripted(train: String, eval: String, extraTask: String = "",
                         answers: [String: String] = [:]) throws -> (CompletionExperiment, ScriptedLanguageModelBase) {
        let settings = try manifest(train: train, eval: eval, extraTask: extraTask).task as! CompletionTaskSettings
        let base = ScriptedLanguageModelBase(answers: answers)
        return (try CompletionExperiment(settings: settings, base: base), base)
    }

    // MARK: The JSONL files

    @Test func bothLineFormatsParseAndBlankLinesAreSkipped() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let conversation = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, "#
            + #"{"role": "assistant", "content": "4"}]}"#
        let path = "\(directory)/crlf.jsonl"
        try Data((Self.text("Capital of France:", " Paris") + "\r\n\r\n" + conversation + "\r\n  \r\n").utf8).write(to: URL(fileURLWithPath: path))
        let examples = try CompletionJSONL.load(path)
        #expect(examples == [
            CompletionExample(content: .text(prompt: "Capital of France:", completion: " Paris"), line: 1),
            CompletionExample(content: .conversation([ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "2+2?"),
                                                      ChatMessage(role: "assistant", content: "4")]), line: 3),
        ])
        #expect(examples.map(\.reference) == [" Paris", "4"])
        #expect(try CompletionJSONL.load(path, maxExamples: 1).count == 1)
    }

    @Test(arguments: [
        ("not json", "found text that is not JSON (not json)"),
        ("[1, 2]", "found a list, not an object"),
        (#"{"prompt": "a"}"#, #"found the keys "prompt""#),
        (#"{"prompt": "a", "completion": "b", "id": 7}"#, #"found the keys "completion", "id", "prompt""#),
        (#"{"prompt": "a", "completion": 3}"#, #""completion" is a number or boolean, not a string"#),
        (#"{"messages": "hi"}"#, #""messages" is a string, not a list"#),
        (#"{"messages": [{"role": "user", "content": "a"}]}"#, "the messages do not end with an assistant message (the completion) after at least one other message"),
        (#"{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}"#, "the messages do not end with an assistant message (the completion) after at least one other message"),
        (#"{"messages": [{"role": "bot", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
         #"messages[0] has the role "bot", not one of system, user, assistant"#),
        (#"{"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]}"#,
         #"messages[0] is not an object of two strings, "role" and "content""#),
    ])
    func aLineThatIsNotACompletionIsAFileLineErrorNamingWhatIsAllowed(_ line: String, _ problem: String) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.jsonl([Self.text("a", "b"), line], in: directory, name: "bad.jsonl")
        let error = try #require(throws: CompletionDataError.self) { try CompletionJSONL.load(path) }
        #expect(error.description.hasPrefix("\(path):2: \(problem); allowed: one JSON object per line, "
            + #"{"prompt": "…", "completion": "…"} or {"messages": [{"role": "system|user|assistant", "content": "…"}, …]}"#), "\(error)")
    }

    @Test func aFileOfBlankLinesHasNoExamples() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.jsonl(["", "  "], in: directory, name: "empty.jsonl")
        #expect(throws: CompletionDataError.noExamples(path: path)) { try CompletionJSONL.load(path) }
    }

    // MARK: The manifest

    @Test func manifestKeysAreCheckedWithoutReadingAnyFile() throws {
        #expect {
            try Manifest(yaml: "task: completion\ntraining: {learning_rate: 1e-3, steps: 2}\nsweep: {variants: [lora], ranks: [4]}", file: "m.yaml")
        } throws: { "\($0)".contains("task: found 'completion'; allowed: a mapping {name: completion, train: FILE, eval: FILE, …}") }
        let cases: [(String, String)] = [
            (", overlong: cut", "task.overlong: found 'cut'; allowed: truncate, refuse"),
            (", chat: yes", "task.chat: found 'yes'; allowed: auto, true, false"),
            (", max_length: 1", "task.max_length: found '1'; allowed: an integer from 2 to 8191"),
            (", max_length: 8000, max_new_tokens: 193", "task.max_new_tokens: found '193'; allowed: an integer from 1 to 192"),
            (", evals: x", "task.evals: found an unknown key 'evals'"),
        ]
        for (extra, message) in cases {
            #expect { try Self.manifest(train: "t.jsonl", eval: "e.jsonl", extraTask: extra) } throws: { "\($0)".contains(message) }
        }
        #expect {
            try Manifest(yaml: """
                task: {name: completion, eval: e.jsonl}
                training: {learning_rate: 1e-3, steps: 2}
                sweep: {variants: [lora], ranks: [4]}
                """, file: "m.yaml")
        } throws: { "\($0)".contains("task.train: found nothing (the required key 'train' is missing)") }
        #expect { try Self.manifest(train: "t.jsonl", eval: "e.jsonl", model: "minilm") } throws: {
            "\($0)".contains("model: found 'minilm'; allowed: for task completion: smollm2")
        }
        #expect(try Self.manifest(train: "t.jsonl", eval: "e.jsonl", extraTask: ", validation: v.jsonl").runs[0].settingsYAML.contains("validation: v.jsonl"))
        let settings = try Self.manifest(train: "t.jsonl", eval: "e.jsonl").task
        #expect(settings.evalMetrics.map(\.name) == ["loss", "perplexity", "exact_match"])
        #expect(!settings.hasValidationSplit && !settings.hasHead)
        #expect(try Self.manifest(train: "t.jsonl", eval: "e.jsonl", extraTask: ", validation: v.jsonl").task.hasValidationSplit)
    }

    /// A missing file is reported before the model is loaded, at the manifest entry that names it.
    @Test func aMissingFileNamesThePathAndTheKey() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let train = try Self.jsonl([Self.text("a", "b")], in: directory, name: "train.jsonl")
        var settings = try Self.manifest(train: train, eval: "\(directory)/nowhere.jsonl").task as! CompletionTaskSettings
        settings.store = ModelStore(cacheDirectory: "\(directory)/no-cache")
        #expect { try settings.makeTask() } throws: {
            "\($0)".hasPrefix("m.yaml:2:") && "\($0)".contains("task.eval: found '\(directory)/nowhere.jsonl', which does not exist; allowed: a JSONL file")
        }
    }

    // MARK: On the scripted model

    @Test func anOverlongExampleIsTruncatedKeepingItsCompletionAndCounted() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let train = try Self.jsonl([Self.text("Question 1?", " yes"), Self.text("Q?", " no"), Self.text("A long question, then?", " maybe")],
                                   in: directory, name: "train.jsonl")
        let eval = try Self.jsonl([Self.text("Is it?", " yes"), Self.text("Is it really so?", " no")], in: directory, name: "eval.jsonl")
        let (experiment, base) = try Self.scripted(train: train, eval: eval, extraTask: ", max_length: 12, overlong: truncate")
        // The scripted model's tokens are bytes, its completions end with one end token.
        #expect(experiment.train.truncated == [true, false, true])
        #expect(experiment.train.examples[0] == EncodedCompletion(prompt: base.bytes("tion 1?"), completion: base.bytes(" yes") + [base.endID]))
        #expect(experiment.train.examples[2] == EncodedCompletion(prompt: base.bytes("then?"), completion: base.bytes(" maybe") + [base.endID]))
        #expect(experiment.heldOut[.eval]?.truncated == [false, true])
        #expect(experiment.dataMetrics == [MetricRow(step: 0, split: "train", metric: "truncated_examples", value: 2),
                                           MetricRow(step: 0, split: "eval", metric: "truncated_examples", value: 1)])
        // A completion longer than the whole budget keeps one prompt token and its own first tokens.
        #expect(EncodedCompletion(prompt: [1, 2, 3], completion: [4, 5, 6, 7]).truncated(to: 3) == EncodedCompletion(prompt: [3], completion: [4, 5]))
        #expect(EncodedCompletion(prompt: [1, 2], completion: [3]).truncated(to: 3) == EncodedCompletion(prompt: [1, 2], completion: [3]))
    }

    @Test func anOverlongExampleIsRefusedByDefaultNamingItsLineAndHowManyAre() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let train = try Self.jsonl([Self.text("Q?", " no"), Self.text("Question 1?", " yes"), Self.text("Another question?", " yes")],
                                   in: directory, name: "train.jsonl")
        let eval = try Self.jsonl([Self.text("Is it?", " yes")], in: directory, name: "eval.jsonl")
        let error = try #require(throws: CompletionTaskError.self) { try Self.scripted(train: train, eval: eval, extraTask: ", max_length: 12") }
        #expect(error.description == "\(train):2: the example is 16 tokens (prompt 11, completion 5 with its end token), more than "
            + "task.max_length (12), and task.overlong is refuse; 2 example(s) of the file are longer: raise task.max_length, or set "
            + "task.overlong: truncate to cut each prompt from the left (and count them)")
    }

    @Test func chatFalseRefusesAConversationAndChatTrueRendersTextLinesAsOne() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let conversation = #"{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello"}]}"#
        let train = try Self.jsonl([Self.text("Q?", " A"), conversation], in: directory, name: "train.jsonl")
        let eval = try Self.jsonl([Self.text("Q?", " A")], in: directory, name: "eval.jsonl")
        let error = try #require(throws: CompletionTaskError.self) { try Self.scripted(train: train, eval: eval, extraTask: ", chat: false") }
        #expect(error.description.hasPrefix("\(train):2: the line holds messages, but task.chat is false"))

        let (auto, base) = try Self.scripted(train: train, eval: eval)
        #expect(auto.train.examples.map(\.prompt) == [base.bytes("Q?"), base.bytes("<user>Hi?<assistant>")])
        let (always, _) = try Self.scripted(train: train, eval: eval, extraTask: ", chat: true")
        #expect(always.train.examples.map(\.prompt) == [base.bytes("<user>Q?<assistant>"), base.bytes("<user>Hi?<assistant>")])
        #expect(always.train.references == [" A", "Hello"])

        let empty = try Self.jsonl([Self.text("", " A")], in: directory, name: "empty.jsonl")
        let emptyPrompt = try #require(throws: CompletionTaskError.self) { try Self.scripted(train: empty, eval: eval) }
        #expect(emptyPrompt.description == "\(empty):1: the prompt is empty: a completion needs at least one prompt token to follow")
    }

    /// Exact match compares the generated text with the reference, whitespace around both
    /// stripped; the loss is per completion token over the split, the perplexity its exp.
    @Test func exactMatchIsComputedFromTheGeneratedText() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let train = try Self.jsonl([Self.text("a", "b"), Self.text("c", "d")], in: directory, name: "train.jsonl")
        let eval = try Self.jsonl([Self.text("France:", " Paris"), Self.text("Peru:", " Lima"), Self.text("Chile:", "Santiago\n"),
                                   Self.text("Spain:", " Madrid")], in: directory, name: "eval.jsonl")
        let answers = ["France:": "Paris ", "Peru:": " Lima, of course", "Chile:": "\n Santiago", "Spain:": ""]
        let (experiment, base) = try Self.scripted(train: train, eval: eval, extraTask: ", max_new_tokens: 12", answers: answers)
        let model = try experiment.makeModel(seed: 0, batchSize: 2, base: .float32) { _, _ in nil }
        let evaluation = try model.evaluate(.eval)
        #expect(evaluation.textPredictions?.map(\.generated) == ["Paris ", " Lima, of co", "\n Santiago", ""])
        #expect(evaluation.textPredictions?.map(\.isExactMatch) == [true, false, true, false])
        #expect(evaluation.metrics == ["loss": 1, "perplexity": exp(1), "exact_match": 0.5])
        #expect(base.generatedFor.sorted() == ["Chile:", "France:", "Peru:", "Spain:"])
        #expect(throws: HeldOutSplitError.self) { try model.evaluate(.validation) }

        // predictions.csv holds the texts, quoted where CSV needs it, and reads back.
        let file = "\(directory)/predictions.csv"
        try AtomicFile.write(try #require(evaluation.predictionsCSV), to: file)
        #expect(try String(contentsOfFile: file, encoding: .utf8).hasPrefix("index,exact_match,truncated,reference,generated\n0,1,0, Paris,Paris \n"))
        #expect(try TextPredictionsCSV.read(file) == evaluation.textPredictions)
        try Data("index,exact_match,truncated,reference,generated\n0,0,0,a,a\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect { try TextPredictionsCSV.read(file) } throws: { "\($0)".contains(":2: exact_match is 0, but the texts match") }
    }

    /// A run continued from a saved data position sees the batches an uninterrupted one sees,
    /// across an epoch's end; a position that does not fit is an error.
    @Test func aRestoredDataPositionContinuesWithTheSameBatches() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let train = try Self.jsonl((0..<5).map { Self.text("q\($0)", " a\($0)") }, in: directory, name: "train.jsonl")
        let eval = try Self.jsonl([Self.text("q", " a")], in: directory, name: "eval.jsonl")
        let (experiment, _) = try Self.scripted(train: train, eval: eval)
        func model() throws -> (CompletionModel, ScriptedLanguageModel) {
            let model = try experiment.makeModel(seed: 3, batchSize: 2, base: .float32) { _, _ in nil } as! CompletionModel
            return (model, model.model as! ScriptedLanguageModel)
        }
        let (whole, wholeBatches) = try model()
        for _ in 0..<7 { #expect(try whole.trainOnNextBatch() == 1) }
        #expect(wholeBatches.batches.map(\.batchSize) == [2, 2, 1, 2, 2, 1, 2])
        let (first, _) = try model()
        for _ in 0..<4 { _ = try first.trainOnNextBatch() }
        #expect(first.dataPosition == [2, 1])
        let (resumed, resumedBatches) = try model()
        try resumed.restore(dataPosition: first.dataPosition)
        for _ in 0..<3 { _ = try resumed.trainOnNextBatch() }
        #expect(resumedBatches.batches == Array(wholeBatches.batches[4...]))
        #expect(throws: DataPositionError.self) { try resumed.restore(dataPosition: [1, 4]) }
        #expect(throws: DataPositionError.self) { try resumed.restore(dataPosition: [1]) }
        #expect {
            try experiment.makeModel(seed: 3, batchSize: 6, base: .float32) { _, _ in nil }
        } throws: { "\($0)" == "\(train): 5 training example(s), fewer than training.batch_size (6), so every batch would be smaller than "
            + "settings.yaml says: lower training.batch_size to at most 5" }
    }

    @Test func aBatchLabelsOnlyTheCompletionTokens() {
        let batch = CompletionBatch(padding: [EncodedCompletion(prompt: [5, 6], completion: [7, 2]),
                                              EncodedCompletion(prompt: [8, 9, 10], completion: [11, 12, 2])], padID: 2)
        #expect(batch.batchSize == 2 && batch.length == 6)
        #expect(batch.inputIDs == [5, 6, 7, 2, 2, 2, 8, 9, 10, 11, 12, 2])
        #expect(batch.attentionMask == [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1])
        #expect(batch.labels == [-100, -100, 7, 2, -100, -100, -100, -100, -100, 11, 12, 2])
        #expect(batch.completionTokenCount == 5)
    }

    // MARK: On SmolLM2

    /// A text example's completion ends with the file's end-of-sequence token; a conversation is
    /// the model's chat template with the generation prompt, then the answer and the token that
    /// closes a turn: together exactly the tokens of the whole conversation rendered, without the
    /// line break after the last turn, which generation never reaches.
    @Test func examplesAreEncodedWithTheModelsTokensTemplateAndEndTokens() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let files = try ModelStore.default.locate(.smollm2)
        let base = try SmolLM2().languageModelBase(files: files) as! LlamaLanguageModelBase
        #expect(base.endOfSequenceID == 2 && base.endOfTurnID == 2 && base.padID == 2)
        let text = try base.encode(CompletionExample(content: .text(prompt: "The capital of France is", completion: " Paris."), line: 1))
        #expect(try base.decode(text.prompt) == "The capital of France is")
        #expect(text.completion == base.tokenizer.encode(" Paris.") + [2])

        let messages = [ChatMessage(role: "user", content: "What is 7 + 5?"), ChatMessage(role: "assistant", content: "12")]
        let chat = try base.encode(CompletionExample(content: .conversation(messages), line: 1))
        let template = try ChatMLTemplate(gguf: GGUFFile(path: files.weightsPath))
        #expect(try base.decode(chat.prompt) == template.render([messages[0]], addGenerationPrompt: true))
        #expect(chat.prompt + chat.completion + base.tokenizer.encode("\n") == base.tokenizer.encode(template.render(messages, addGenerationPrompt: false)))
    }

    /// The training loss is the mean cross-entropy over the batch's completion tokens: each
    /// example's `LlamaDecoder.loss(labels:)` (prompt labelled −100), weighted by its completion
    /// tokens. A changed prompt token changes it; padding does not.
    @Test func theLossIsTheMeanOverTheBatchsCompletionTokensOnly() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let base = try SmolLM2().languageModelBase(files: ModelStore.default.locate(.smollm2)) as! LlamaLanguageModelBase
        let model = try base.makeLanguageModel(base: .float32) { _, _ in nil }
        let examples = try [("Question: What is the capital of Italy?\nAnswer:", " Rome"), ("2 + 2 =", " 4, as everyone knows")].map {
            try base.encode(CompletionExample(content: .text(prompt: $0.0, completion: $0.1), line: 1))
        }
        let loss = try model.loss(CompletionBatch(padding: examples, padID: base.padID), training: false)

        let decoder = try LlamaDecoder(weights: base.weights)
        var total = 0.0
        for example in examples {
            let ids = example.prompt + example.completion
            let labels = Array(repeating: LlamaDecoder.ignoredLabel, count: example.prompt.count) + example.completion
            let alone = try decoder.loss(inputIDs: ids, attentionMask: Array(repeating: 1, count: ids.count), labels: labels, batchSize: 1,
                                         training: false)
            total += Double(alone) * Double(example.completion.count)
        }
        let expected = total / Double(examples.map(\.completion.count).reduce(0, +))
        #expect(abs(Double(loss) - expected) <= 1e-5 * expected, "\(loss) vs \(expected)")

        var changedPrompt = examples
        changedPrompt[0].prompt[0] = 42
        #expect(try model.loss(CompletionBatch(padding: changedPrompt, padID: base.padID), training: false) != loss)
    }

    /// Two steps on four examples (both formats), evaluated on four and a validation file of two
    /// with four new tokens: the metrics, predictions.csv, the truncation counts and a causal-LM
    /// adapter that generates the same texts after reloading; then the same sweep stopped after
    /// its first step and resumed gives the same files.
    @Test func aTinySweepOnSmolLM2ScoresItsGenerationsAndResumesToTheSameNumbers() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let data = Fixtures.dataDirectory + "/completion-example"
        let directory = try ExperimentSupport.temporaryDirectory(), stopped = try ExperimentSupport.temporaryDirectory()
        defer { for folder in [directory, stopped] { try? FileManager.default.removeItem(atPath: folder) } }
        let manifest = try Self.manifest(train: "\(data)/train.jsonl", eval: "\(data)/eval.jsonl",
                                         extraTask: ", validation: '\(data)/validation.jsonl', max_train_examples: 4, eval_examples: 4, "
                                            + "max_length: 24, overlong: truncate, max_new_tokens: 4",
                                         training: "steps: 2, batch_size: 2, save_every: 1, eval_at_start: false")
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed], "\(outcomes.map(\.reason))")
        let outcome = outcomes[0], run = manifest.runs[0]
        let layout = ResultsLayout(root: "\(directory)/results")

        let final = outcome.finalEval
        #expect(Set(final.keys) == ["loss", "perplexity", "exact_match"])
        #expect(abs(try #require(final["perplexity"]) - exp(try #require(final["loss"]))) <= 1e-9 * final["perplexity"]!)
        #expect(Set(try #require(outcome.finalValidation).keys) == ["loss", "perplexity", "exact_match"])
        let predictions = try TextPredictionsCSV.read(layout.predictionsFile(run.id))
        #expect(predictions.count == 4)
        #expect(predictions.map(\.reference) == [" Brussels", "25", " Bern", " Bangkok"])
        #expect(final["exact_match"] == Double(predictions.count { $0.isExactMatch }) / 4)

        // The conversations are longer than max_length 24 (their system prompt goes): counted at step 0.
        let experiment = try manifest.task.makeTask() as! CompletionExperiment
        let counts = [experiment.train, experiment.heldOut[.eval]!, experiment.heldOut[.validation]!].map(\.truncatedCount)
        #expect(counts == [1, 1, 3])
        #expect(predictions.map(\.truncated) == [false, true, false, false])
        let metrics = try CSVTable(contentsOf: layout.runMetricsFile(run.id), producer: "test")
        let truncation = metrics.records.map(\.fields).filter { $0[3] == "truncated_examples" }.map { ($0[1], $0[2], Double($0[4])) }
        #expect(truncation.map(\.0) == ["0", "0", "0"] && truncation.map(\.1) == ["train", "eval", "validation"])
        #expect(truncation.map(\.2) == [1, 1, 3])

        // peft's causal-LM layout; reloaded, the adapter generates the texts of the run's last evaluation.
        let checkpoint = try PeftCheckpoint.load(layout.peftAdapterDirectory(run.id))
        #expect(checkpoint.config["task_type"] == .string("CAUSAL_LM"))
        #expect(checkpoint.config.baseModelNameOrPath == "HuggingFaceTB/SmolLM2-135M-Instruct")
        #expect(checkpoint.modules.count == 60)
        let base = experiment.base as! LlamaLanguageModelBase
        let adapted = try AdaptedDecoder(checkpoint: checkpoint, weights: base.weights, baseModelSHA256: base.files.weightsSHA256)
        let reloaded = CompletionModel(experiment: experiment, model: LlamaLanguageModel(decoder: adapted.decoder, endTokenIDs: [2],
                                                                                         family: base.files.family),
                                       order: Batcher(encoded: [], padId: 2, batchSize: 1, shuffle: false))
        let evaluation = try reloaded.evaluate(.eval)
        #expect(evaluation.textPredictions == predictions)
        #expect(evaluation.metrics["loss"].map(Float.init) == final["loss"].map(Float.init))

        // Stopped after step 1 (its checkpoint saved) and resumed: the files of the uninterrupted sweep.
        _ = try ResultsReliabilityTests.stopAndResume(manifest, into: stopped, at: 1)
        try ResultsReliabilityTests.expectSameResults(directory, stopped, manifest)
        let resumed = ResultsLayout(root: "\(stopped)/results")
        #expect(FileManager.default.contents(atPath: resumed.predictionsFile(run.id)) == FileManager.default.contents(atPath: layout.predictionsFile(run.id)))
        let weights = "\(PeftCheckpoint.weightsFile)"
        #expect(FileManager.default.contents(atPath: "\(resumed.peftAdapterDirectory(run.id))/\(weights)")
                == FileManager.default.contents(atPath: "\(layout.peftAdapterDirectory(run.id))/\(weights)"))
    }
}

/// A stand-in language model whose tokens are UTF-8 bytes: a text example is its prompt's bytes
/// and its completion's with `endID` after them, a conversation `<role>content` per earlier
/// message then `<assistant>`; it generates the scripted answer to a prompt, and its loss is 1
/// per token, recording every batch it is given.
final class ScriptedLanguageModelBase: LanguageModelBase {
    let files = ModelFiles(family: SmolLM2(), directory: "/nonexistent")
    let padID = 0
    let endID = 3
    let frozenParameterCount = 0
    let answers: [String: String]
    /// The prompts generated for, as text.
    var generatedFor: [String] = []

    init(answers: [String: String]) { self.answers = answers }

    func bytes(_ text: String) -> [Int] { text.utf8.map(Int.init) }

    func encode(_ example: CompletionExample) throws -> EncodedCompletion {
        let prompt: String
        switch example.content {
        case let .text(text, _): prompt = text
        case let .conversation(messages): prompt = messages.dropLast().map { "<\($0.role)>\($0.content)" }.joined() + "<assistant>"
        }
        guard !prompt.isEmpty else { throw LanguageModelError.emptyPrompt }
        return EncodedCompletion(prompt: bytes(prompt), completion: bytes(example.reference) + [endID])
    }

    func decode(_ ids: [Int]) throws -> String { String(decoding: ids.map(UInt8.init), as: UTF8.self) }

    func makeLanguageModel(base: BaseWeightFormat, adapt: ModuleAdapterFactory) throws -> any LanguageModel { ScriptedLanguageModel(base: self) }
}

final class ScriptedLanguageModel: LanguageModel {
    let base: ScriptedLanguageModelBase
    private(set) var batches: [CompletionBatch] = []

    init(base: ScriptedLanguageModelBase) { self.base = base }

    let adapters: [NamedAdapter] = []
    let trainableParameters: [Parameter] = []

    func loss(_ batch: CompletionBatch, training: Bool) throws -> Float {
        batches.append(batch)
        return 1
    }

    func backward() throws {}

    func generate(prompts: [[Int]], maxNewTokens: Int) throws -> [[Int]] {
        try prompts.map { prompt in
            let text = try base.decode(prompt)
            base.generatedFor.append(text)
            return Array(base.bytes(base.answers[text] ?? "").prefix(maxNewTokens))
        }
    }

    func describe(_ config: inout PeftConfig) throws {}
}
