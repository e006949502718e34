"""The served document's corrections to OpenAI's spec (http_bridge/openapi/corrections.py)."""

from __future__ import annotations

from http_bridge.openapi.corrections import SSE, corrected, with_discriminator_mappings, with_sse_events

REF = "#/components/schemas/"
SCHEMAS = {
    "Call": {"type": "object", "properties": {"type": {"type": "string", "enum": ["function"]}}},
    "Custom": {"allOf": [{"$ref": REF + "CustomBase"}]},
    "CustomBase": {"type": "object", "properties": {"type": {"const": "custom"}}},
    "Untagged": {"type": "object"},
    "Calls": {
        "type": "array",
        "items": {
            "anyOf": [{"$ref": REF + "Call"}, {"$ref": REF + "Custom"}],
            "discriminator": {"propertyName": "type"},
        },
    },
    "Loose": {
        "oneOf": [{"$ref": REF + "Call"}, {"$ref": REF + "Untagged"}],
        "discriminator": {"propertyName": "type"},
    },
}


def test_a_discriminator_maps_each_tag_value_to_its_schema() -> None:
    mapped = with_discriminator_mappings(SCHEMAS)
    assert mapped["Calls"]["items"]["discriminator"] == {
        "propertyName": "type",
        "mapping": {"function": REF + "Call", "custom": REF + "Custom"},
    }
    assert "mapping" not in SCHEMAS["Calls"]["items"]["discriminator"], "the input is left as it was"


def test_a_discriminator_whose_alternatives_do_not_all_say_their_tag_is_dropped() -> None:
    loose = with_discriminator_mappings(SCHEMAS)["Loose"]
    assert "discriminator" not in loose and len(loose["oneOf"]) == 2


def test_a_base64_embedding_may_be_a_string() -> None:
    embedding = {
        "type": "object",
        "properties": {"embedding": {"type": "array", "items": {"type": "number"}}},
    }
    fixed = corrected({"Embedding": embedding})["Embedding"]["properties"]["embedding"]
    assert {"type": "string"}.items() <= fixed["anyOf"][1].items()
    assert fixed["anyOf"][0] == embedding["properties"]["embedding"]


def test_an_event_streams_schema_describes_one_event_whose_data_is_the_chunk() -> None:
    chunk = {"$ref": REF + "Chunk"}
    error = {"$ref": REF + "ErrorResponse"}
    responses = {"200": {"description": "OK", "content": {SSE: {"schema": chunk}, "application/json": {}}}}
    event = with_sse_events(responses, error)["200"]["content"][SSE]["schema"]
    data = event["properties"]["data"]["anyOf"]
    assert data[0] == {"const": "[DONE]"}
    assert data[1]["contentMediaType"] == "application/json"
    assert data[1]["contentSchema"] == {"anyOf": [chunk, error]}
    assert responses["200"]["content"][SSE] == {"schema": chunk}, "the input is left as it was"
