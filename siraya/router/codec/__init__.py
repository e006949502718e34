"""Hand-written OpenAI JSON <-> protobuf codecs, one module per endpoint.

The bridge decodes client requests and encodes responses with them; the OpenAI-compatible
provider adapter encodes upstream requests and decodes upstream replies with the same code.
`json_format` is never used here: it is ~50x slower than these codecs on a chat request.
"""
