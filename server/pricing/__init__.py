"""Prices: the built-in catalogue of list prices (builtin.py, catalogue.yaml) that the config overrides."""

from server.pricing.builtin import ListedModel, PriceCatalogue, builtin_catalogue, load_catalogue

__all__ = ["ListedModel", "PriceCatalogue", "builtin_catalogue", "load_catalogue"]
