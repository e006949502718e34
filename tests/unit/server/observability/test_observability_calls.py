"""Every RPC the gateway serves gets its own endpoint label and service name, never a placeholder."""

from __future__ import annotations

import pytest

from server.observability.calls import rpc_info
from siraya.router.v1 import (
    admin_pb2,
    chat_pb2,
    embeddings_pb2,
    images_pb2,
    models_pb2,
    responses_pb2,
    videos_pb2,
)

METHODS = [
    (service.full_name, method.name)
    for module in (chat_pb2, responses_pb2, embeddings_pb2, images_pb2, models_pb2, videos_pb2, admin_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


@pytest.mark.parametrize(("service", "method"), METHODS)
def test_each_rpc_is_labelled_with_its_rest_path_and_service(service: str, method: str) -> None:
    info = rpc_info(method, streaming=False)
    assert info.endpoint.startswith("/v1/"), info.endpoint
    assert (info.service, info.full_name) == (service, f"{service}/{method}")


def test_the_account_rpcs_have_their_paths() -> None:
    assert rpc_info("GetCurrentKey", False).endpoint == "/v1/key"
    assert rpc_info("GetGeneration", False).endpoint == "/v1/generation"
    assert rpc_info("UpdateKey", False).endpoint == "/v1/keys/{id}"
