import Foundation

/// One example of a completion task: a text prompt and the completion that should follow it, or
/// a conversation whose last (assistant) message is the completion and whose earlier messages,
/// rendered with the model's chat template, are the prompt.
public struct CompletionExample: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case text(prompt: String, completion: String)
        case conversation([ChatMessage])
    }

    public var content: Content
    /// The example's line in its JSONL file (1-based), for error messages.
    public var line: Int

    public init(content: Content, line: Int) {
        self.content = content
        self.line = line
    }

    /// The completion as written: what a generated answer is compared with.
    public var reference: String {
        switch content {
        case let .text(_, completion): return completion
        case let .conversation(messages): return messages.last?.content ?? ""
        }
    }
}

/// Errors reading a completion task's JSONL file; each names the file, and the line when one is at fault.
public enum CompletionDataError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badLine(path: String, line: Int, problem: String)
    case noExamples(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read the JSONL file: \(reason)"
        case let .badLine(path, line, problem):
            return "\(path):\(line): \(problem); allowed: one JSON object per line, {\"prompt\": \"…\", \"completion\": \"…\"} or "
                + "{\"messages\": [{\"role\": \"system|user|assistant\", \"content\": \"…\"}, …]} ending with an assistant message"
        case let .noExamples(path): return "\(path): no examples (every line is blank)"
        }
    }
}

/// The JSONL files of a completion task, in the two formats TRL's trainers read: a line is
/// `{"prompt": "…", "completion": "…"}` (language modelling: the completion follows the prompt's
/// text) or `{"messages": [{"role": …, "content": …}, …]}` (conversational: roles `system`,
/// `user`, `assistant`; the last message is the assistant's answer, the completion, and at least
/// one message comes before it). Blank lines are skipped; any other line, and any other key, is an
/// error naming the file and line, so a typo never turns into a silently different example.
public enum CompletionJSONL {
    public static let roles = ["system", "user", "assistant"]

    /// Every example of `path`, in file order; `maxExamples` keeps the first ones.
    public static func load(_ path: String, maxExamples: Int? = nil) throws -> [CompletionExample] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CompletionDataError.unreadable(path: path, reason: error.localizedDescription)
        }
        var examples: [CompletionExample] = []
        // A CRLF file's "\r\n" is one Character, so splitting on "\n" alone would leave it one line.
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            if let maxExamples, examples.count >= maxExamples { break }
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            do {
                examples.append(CompletionExample(content: try parse(line), line: offset + 1))
            } catch let problem as LineProblem {
                throw CompletionDataError.badLine(path: path, line: offset + 1, problem: problem.text)
            }
        }
        guard !examples.isEmpty else { throw CompletionDataError.noExamples(path: path) }
        return examples
    }

    private struct LineProblem: Error {
        var text: String
    }

    /// One line's example, or what is wrong with it.
    private static func parse(_ line: Substring) throws -> CompletionExample.Content {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
        } catch {
            throw LineProblem(text: "found text that is not JSON (\(excerpt(line)))")
        }
        guard let fields = object as? [String: Any] else { throw LineProblem(text: "found \(kind(of: object)), not an object") }
        let keys = fields.keys.sorted()
        switch keys {
        case ["completion", "prompt"]:
            guard let prompt = fields["prompt"] as? String else { throw LineProblem(text: "\"prompt\" is \(kind(of: fields["prompt"]!)), not a string") }
            guard let completion = fields["completion"] as? String else {
                throw LineProblem(text: "\"completion\" is \(kind(of: fields["completion"]!)), not a string")
            }
            return .text(prompt: prompt, completion: completion)
        case ["messages"]:
            return .conversation(try messages(fields["messages"]!))
        default:
            throw LineProblem(text: "found the keys \(keys.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
    }

    private static func messages(_ value: Any) throws -> [ChatMessage] {
        guard let list = value as? [Any] else { throw LineProblem(text: "\"messages\" is \(kind(of: value)), not a list") }
        let messages = try list.enumerated().map { index, entry -> ChatMessage in
            guard let fields = entry as? [String: Any], fields.keys.sorted() == ["content", "role"],
                  let role = fields["role"] as? String, let content = fields["content"] as? String else {
                throw LineProblem(text: "messages[\(index)] is not an object of two strings, \"role\" and \"content\"")
            }
            guard roles.contains(role) else {
                throw LineProblem(text: "messages[\(index)] has the role \"\(role)\", not one of \(roles.joined(separator: ", "))")
            }
            return ChatMessage(role: role, content: content)
        }
        guard messages.count >= 2, messages.last?.role == "assistant" else {
            throw LineProblem(text: "the messages do not end with an assistant message (the completion) after at least one other message")
        }
        return messages
    }

    private static func kind(of value: Any) -> String {
        switch value {
        case is String: return "a string"
        case is [Any]: return "a list"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        default: return "a number or boolean"
        }
    }

    /// At most the first 60 characters of a line: a damaged file can make one "line" megabytes long.
    private static func excerpt(_ line: Substring) -> String {
        line.count <= 60 ? String(line) : line.prefix(60) + "…"
    }
}

/// A completion example as the model reads it: the prompt's tokens, then the completion's, its
/// end token last. The loss is taken on the completion's tokens only.
public struct EncodedCompletion: Sendable, Equatable {
    public var prompt: [Int]
    public var completion: [Int]

    public init(prompt: [Int], completion: [Int]) {
        self.prompt = prompt
        self.completion = completion
    }

    public var count: Int { prompt.count + completion.count }

    /// The example cut to `maxLength` tokens (≥ 2) when it is longer: the completion is what is
    /// learned and scored, so it is kept whole and the prompt loses its first tokens (the ones
    /// furthest from the answer), down to one; a completion too long even for that keeps its first
    /// `maxLength − 1` tokens, losing its end.
    public func truncated(to maxLength: Int) -> EncodedCompletion {
        precondition(maxLength >= 2, "an example needs a prompt token and a completion token")
        guard count > maxLength else { return self }
        let completionKept = min(completion.count, maxLength - 1)
        return EncodedCompletion(prompt: Array(prompt.suffix(maxLength - completionKept)), completion: Array(completion.prefix(completionKept)))
    }
}

/// Right-padded completion examples, row-major [batchSize, length]: the ids, the attention mask
/// (1 token, 0 padding) and the causal-LM labels, −100 (`ignoredLabel`) at the prompt and the padding,
/// the token itself at the completion, as transformers' `labels` are.
public struct CompletionBatch: Sendable, Equatable {
    public static let ignoredLabel = -100

    public var inputIDs: [Int]
    public var attentionMask: [Int]
    public var labels: [Int]
    public var batchSize: Int
    public var length: Int

    public init(padding examples: [EncodedCompletion], padID: Int) {
        length = examples.map(\.count).max() ?? 0
        batchSize = examples.count
        (inputIDs, attentionMask, labels) = ([], [], [])
        for example in examples {
            let padding = length - example.count
            inputIDs += example.prompt + example.completion + Array(repeating: padID, count: padding)
            attentionMask += Array(repeating: 1, count: example.count) + Array(repeating: 0, count: padding)
            labels += Array(repeating: Self.ignoredLabel, count: example.prompt.count) + example.completion
                + Array(repeating: Self.ignoredLabel, count: padding)
        }
    }

    /// The tokens the loss is taken on: every completion token of the batch.
    public var completionTokenCount: Int { labels.count { $0 != Self.ignoredLabel } }
}
