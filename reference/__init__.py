"""Operator-edited reference data and policy files, with the demo district."""
