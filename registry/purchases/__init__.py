"""Consumption-assistance purchases (消费帮扶): products of Sichuan counties bought or sold with East help."""
