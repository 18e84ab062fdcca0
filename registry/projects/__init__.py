"""Assistance projects (帮扶项目), their status lifecycle and their fund transactions."""
