"""One table of services (siraya.router.services) feeds registration, reflection, health and stubs."""

from __future__ import annotations

import dataclasses
import inspect

from http_bridge.stubs import GatewayStubs
from server.grpc_server import CORE_REGISTERED_METHODS, Servicers
from siraya.router import services
from siraya.router.services import SERVICE_NAMES, SERVICES
from siraya.router.v1 import admin_pb2


def test_every_service_the_protos_declare_is_in_the_table() -> None:
    declared = set()
    for module in services.__dict__.values():
        descriptor = getattr(module, "DESCRIPTOR", None)
        if inspect.ismodule(module) and module.__name__.endswith("_pb2") and descriptor is not None:
            declared.update(service.full_name for service in descriptor.services_by_name.values())
    assert declared == set(SERVICE_NAMES)
    assert admin_pb2.DESCRIPTOR.services_by_name["KeysService"].full_name in SERVICE_NAMES


def test_stub_and_servicer_sets_have_one_member_per_row() -> None:
    attributes = [contract.attribute for contract in SERVICES]
    # The stubs are the required fields; the bridge's helpers beside them all have defaults.
    stub_fields = dataclasses.fields(GatewayStubs)
    services = [field.name for field in stub_fields if field.default is dataclasses.MISSING]
    assert services == attributes
    servicer_names = [name for name in vars(Servicers(gateway=None)) if not name.startswith("_")]  # type: ignore[arg-type]
    assert sorted(servicer_names) == sorted(attributes)


def test_core_registered_methods_exist() -> None:
    """A misspelt or renamed name would quietly leave a model method on grpc's slower generic path."""
    methods = {f"{c.full_name}/{method.name}" for c in SERVICES for method in c.descriptor.methods}
    assert CORE_REGISTERED_METHODS <= methods
    assert "siraya.router.v1.ChatService/StreamChatCompletion" in CORE_REGISTERED_METHODS
