import NIOHTTP1

extension HTTPStatus {
    /// The reason phrase for an HTTP/1.1 status line: NIOHTTP1's for the codes it knows,
    /// and a generic one for the class otherwise. RFC 9112 lets it be empty, but some
    /// clients (h2load's parser, for one) fail a response without one.
    static func reason(_ status: Int) -> String {
        let known = HTTPResponseStatus(statusCode: status).reasonPhrase
        guard known.isEmpty else { return known }
        switch status / 100 {
        case 1: return "Informational"
        case 2: return "Success"
        case 3: return "Redirection"
        case 4: return "Client Error"
        default: return "Server Error"
        }
    }
}
