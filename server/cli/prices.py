"""`siraya-router prices check`: the served models that have no price, before a key with a limit finds them.

A model is priced when the config or the built-in catalogue (server/pricing/catalogue.yaml) gives a
price for every quantity its kind is billed by, or when its config says `pricing: free`. An unpriced
model is refused to keys with a credit limit, so this command exits 1 while any is left: a deploy
script can run it before `serve`.
"""

from __future__ import annotations

import argparse

from server.config import GatewayConfig

__all__ = ["EXIT_UNPRICED", "add_price_commands", "run_prices"]

EXIT_UNPRICED = 1


def add_price_commands(prices: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    commands = prices.add_subparsers(dest="prices_command", required=True, metavar="COMMAND")
    commands.add_parser(
        "check", parents=[common], help="list served models with no price (exit 1 if there are any)"
    )


def run_prices(config: GatewayConfig, as_json: bool) -> int:
    # Here, not at the top: every command builds the parser, only this one needs the routing code.
    from server.cli.output import print_json
    from server.routing.catalogue import Catalogue

    catalogue = Catalogue(config)
    entries = catalogue.entries()
    unpriced = [
        {"model": entry.id, "kind": entry.kind, "deployment": deployment}
        for entry in entries
        for deployment in entry.unpriced
    ]
    passthrough = sorted(name for name, provider in config.providers.items() if provider.passthrough_models)
    if as_json:
        print_json({"models": len(entries), "unpriced": unpriced, "passthrough_providers": passthrough})
        return EXIT_UNPRICED if unpriced else 0
    for row in unpriced:
        print(f"{row['model']}: no price for {row['kind']} requests on {row['deployment']}")
    if unpriced:
        print(
            f"{len(unpriced)} of {len(entries)} served models have no price: keys with a credit limit are"
            " refused them. Set `pricing:` in the config, or `pricing: free` for a model that costs nothing."
        )
    else:
        print(f"All {len(entries)} served models have a price.")
    if passthrough:
        print(
            f"Passthrough providers ({', '.join(passthrough)}) also serve models by name: those the"
            " built-in catalogue lists are priced, others serve only keys without a credit limit."
        )
    return EXIT_UNPRICED if unpriced else 0
