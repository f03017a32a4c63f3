/// Why an HTTP/1.x message was rejected; becomes a 400 (request) or 502 (response).
///
/// `code` is stable and is what tests compare; `reason` is for people and logs.
struct HTTP1ParseError: Error, Equatable, CustomStringConvertible {
    enum Code: String, Equatable {
        case bareLF = "bare_lf"
        case bareCR = "bare_cr"
        case invalidRequestLine = "invalid_request_line"
        case invalidStatusLine = "invalid_status_line"
        case unsupportedVersion = "unsupported_version"
        case invalidFieldName = "invalid_field_name"
        case invalidFieldValue = "invalid_field_value"
        case obsFold = "obs_fold"
        case headTooLarge = "head_too_large"
        case tooManyFields = "too_many_fields"
        case invalidContentLength = "invalid_content_length"
        case conflictingFraming = "conflicting_framing"
        case invalidTransferEncoding = "invalid_transfer_encoding"
        case missingHost = "missing_host"
        case duplicateHost = "duplicate_host"
        case invalidChunk = "invalid_chunk"
    }

    let code: Code
    let reason: String

    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    var description: String { "\(code.rawValue): \(reason)" }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
}
