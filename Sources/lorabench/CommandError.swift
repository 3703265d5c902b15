/// A command that cannot do what it was asked with the files it was given (ArgumentParser's
/// `ValidationError` is for the arguments themselves and prints the usage after the message).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
