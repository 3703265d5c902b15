import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A ChatML chat template, recognised from the Jinja source a model file carries
/// (`tokenizer.chat_template`) and rendered as transformers' `apply_chat_template` renders it.
///
/// There is no Jinja engine here: the template must be one of the two ChatML forms below, and
/// any other template is an error rather than a guess.
/// - SmolLM2's: a conversation that does not open with a system message gets a default system
///   turn (`You are a helpful AI assistant named SmolLM, trained by Hugging Face`);
/// - plain ChatML: the same turns without a default system message.
/// Each turn is `<|im_start|>{role}\n{content}<|im_end|>\n`, and the generation prompt
/// `<|im_start|>assistant\n`. Contents are inserted verbatim, as Jinja does.
public struct ChatMLTemplate: Sendable, Equatable {
    /// The system turn added when the first message is not a system message, if the template has one.
    public let defaultSystemPrompt: String?

    /// The control token that closes every turn: a generated answer ends with it.
    public static let endOfTurn = "<|im_end|>"

    private static let loop = "{% for message in messages %}"
    private static let defaultSystemOpening = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    private static let defaultSystemClosing = "<|im_end|>\n' }}{% endif %}"
    private static let turnsAndGenerationPrompt = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

    /// - Parameter source: names the template in errors, e.g. "model.gguf: tokenizer.chat_template".
    public init(template: String, source: String) throws {
        guard template.hasPrefix(Self.loop), template.hasSuffix(Self.turnsAndGenerationPrompt) else {
            throw ByteLevelBPEError.unsupportedChatTemplate(source: source, template: template)
        }
        let middle = template.dropFirst(Self.loop.count).dropLast(Self.turnsAndGenerationPrompt.count)
        if middle.isEmpty {
            defaultSystemPrompt = nil
            return
        }
        // The prompt sits inside a single-quoted Jinja string: a quote or a backslash would make
        // it something other than literal text.
        guard middle.hasPrefix(Self.defaultSystemOpening), middle.hasSuffix(Self.defaultSystemClosing),
              middle.count >= Self.defaultSystemOpening.count + Self.defaultSystemClosing.count else {
            throw ByteLevelBPEError.unsupportedChatTemplate(source: source, template: template)
        }
        let prompt = middle.dropFirst(Self.defaultSystemOpening.count).dropLast(Self.defaultSystemClosing.count)
        guard !prompt.contains("'"), !prompt.contains("\\") else {
            throw ByteLevelBPEError.unsupportedChatTemplate(source: source, template: template)
        }
        defaultSystemPrompt = String(prompt)
    }

    /// The conversation as text, ending with the generation prompt when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
            text += Self.turn(role: "system", content: defaultSystemPrompt)
        }
        for message in messages { text += Self.turn(role: message.role, content: message.content) }
        if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        return text
    }

    private static func turn(role: String, content: String) -> String { "<|im_start|>\(role)\n\(content)\(endOfTurn)\n" }
}
